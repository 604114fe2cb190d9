"""FL simulation: shared model, client training engines, FedAvg server and its observers."""
