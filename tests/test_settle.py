"""settle_round: the one function that turns a round's updates into the next shared model and an observation."""

from __future__ import annotations

import dataclasses

import torch

from mganai.fl.aggregate import apply_update, weighted_mean
from mganai.fl.settle import DefenseSteps, RoundUpdates, settle_round


def _round(k: int = 4, seed: int = 0) -> RoundUpdates:
    gen = torch.Generator().manual_seed(seed)
    global_params = {"w": torch.randn(3, 2, generator=gen), "b": torch.randn(2, generator=gen)}
    sent = {n: v.expand(k, *v.shape).clone() for n, v in global_params.items()}
    updates = {n: 0.1 * torch.randn(k, *v.shape, generator=gen) for n, v in global_params.items()}
    counts = torch.tensor([10.0, 20.0, 5.0, 7.0][:k])
    return RoundUpdates(2, global_params, [0, 3, 5, 8][:k], sent, updates, counts)


def test_the_new_model_is_the_sample_weighted_mean_of_the_accepted_updates():
    r = _round()
    settled = settle_round(r, max_update_norm=1000.0)
    want = apply_update(r.global_params, weighted_mean(r.updates, r.num_samples))
    assert settled.rejected == [] and settled.aggregated == [0, 3, 5, 8]
    for n in want:
        assert torch.equal(settled.params[n], want[n])
    obs = settled.observation
    assert obs.round == 2 and obs.client_ids == [0, 3, 5, 8] and obs.aggregated == [0, 3, 5, 8]
    for n in r.updates:  # copies of what the server holds
        assert torch.equal(obs.updates[n], r.updates[n]) and obs.updates[n] is not r.updates[n]
        assert torch.equal(obs.global_params[n], r.global_params[n])


def test_a_rejected_update_reaches_neither_the_average_nor_the_observation():
    r = _round()
    broken = dataclasses.replace(r, updates={n: v.clone() for n, v in r.updates.items()})
    broken.updates["w"][1] = float("nan")
    settled = settle_round(broken, max_update_norm=1000.0)
    assert [x["client"] for x in settled.rejected] == [3] and settled.rejected[0]["round"] == 2
    without = r.select([0, 2, 3])
    want = apply_update(r.global_params, weighted_mean(without.updates, without.num_samples))
    for n in want:
        assert torch.equal(settled.params[n], want[n])
    assert settled.observation.client_ids == [0, 5, 8] and settled.aggregated == [0, 5, 8]
    assert torch.equal(settled.observation.num_samples, torch.tensor([10.0, 5.0, 7.0]))


def test_a_dispatched_client_is_observed_but_not_averaged_and_nobody_averaged_keeps_the_model():
    r = dataclasses.replace(_round(), dispatched=frozenset({5}))
    settled = settle_round(r, max_update_norm=1000.0)
    assert settled.observation.client_ids == [0, 3, 5, 8] and settled.aggregated == [0, 3, 8]
    alone = settle_round(dataclasses.replace(_round(k=1), dispatched=frozenset({0})), max_update_norm=1000.0)
    assert alone.params is None and alone.aggregated == [] and alone.observation.client_ids == [0]
    too_long = settle_round(_round(), max_update_norm=1e-6)
    assert too_long.params is None and too_long.observation is None and len(too_long.rejected) == 4


def test_transforms_act_between_screening_and_aggregation_and_the_observation_shows_their_result():
    seen = []

    def halve(held: RoundUpdates) -> RoundUpdates:
        seen.append(list(held.client_ids))
        return dataclasses.replace(held, updates={n: v / 2 for n, v in held.updates.items()})

    r = _round()
    r.updates["b"][0] = float("inf")  # screened out before any defense sees it
    settled = settle_round(r, max_update_norm=1000.0, defense=DefenseSteps(arrive=(halve,)))
    assert seen == [[3, 5, 8]]
    held = r.select([1, 2, 3])
    halved = {n: v / 2 for n, v in held.updates.items()}
    want = apply_update(r.global_params, weighted_mean(halved, held.num_samples))
    for n in want:
        assert torch.equal(settled.params[n], want[n])
        assert torch.equal(settled.observation.updates[n], halved[n])
