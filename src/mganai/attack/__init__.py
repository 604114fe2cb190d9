"""The server-side attack: representatives, multi-task discriminator, generator, mGAN-AI and baselines."""
