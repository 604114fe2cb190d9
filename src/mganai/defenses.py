"""The defenses an audit can put between the clients and the server: one entry each, the one place a defense is
described.

Config validation, the command line's help, the report's notes, the privacy
accountant (`mganai.fl.accounting`), the simulator's round settlement
(`mganai.fl.defenses`) and the Flower path (`mganai.flower.defenses`) read this
registry. Plain data: importing it costs no torch (config validation and
`mganai --help` read it).

What the server holds of each client's update decides what the attack can do:

| defense | the server sees | DP noise | ε is against |
|---|---|---|---|
| `none` | every raw update, with its client id | - | - |
| `central-dp` | every raw update (it clips and noises only the aggregate) | σ·C on the sum | the models' readers |
| `client-dp` | every update clipped by its client, un-noised | σ·C on the sum | the models' readers |
| `local-dp` | every update clipped and noised by its client | σ·C on each update | the server itself |
| `secagg` | only the sum of the round's updates | - | - |
| `shuffle` | every raw update, shuffled, without client ids | - | - |
"""

from __future__ import annotations

from dataclasses import dataclass

NONE = "none"


@dataclass(frozen=True)
class Defense:
    """One defense."""

    name: str
    note: str  # one line: what it does, shown in the report and `--help`
    server_sees: str  # what the server holds of a client's update (the attack's observation)
    dp: str | None = None  # where the DP noise goes: "central" (on the sum), "local" (on each update), None
    individual_updates: bool = True  # does the server see each client's own update at all
    client_ids: bool = True  # does it know whose update is whose
    flower: str | None = None  # what the Flower path runs for it (None: Flower has no such component)


DEFENSES: dict[str, Defense] = {
    d.name: d
    for d in (
        Defense(NONE, "no defense", "every raw update, with its client id", flower="FedAvg"),
        Defense(
            "central-dp",
            "DP-FedAvg: the server clips every update to C and adds N(0, (σC)²) to their sum",
            "every raw update, before it clips them (its own noise protects the models it releases, not the clients "
            "from itself)",
            dp="central",
            flower="DifferentialPrivacyServerSideFixedClipping",
        ),
        Defense(
            "client-dp",
            "clients clip their updates to C; the server adds N(0, (σC)²) to the sum",
            "every update clipped by its client, without noise",
            dp="central",
            flower="DifferentialPrivacyClientSideFixedClipping + fixedclipping_mod",
        ),
        Defense(
            "local-dp",
            "every client clips its update to C and adds N(0, (σC)²) to it before sending",
            "every update clipped and noised by its client",
            dp="local",
            flower="LocalDpMod",
        ),
        Defense(
            "secagg",
            "secure aggregation: the server learns only the sum of the round's updates",
            "only the (sample-weighted) mean of the round's updates",
            individual_updates=False,
            client_ids=False,
            flower="SecAggPlusWorkflow + secaggplus_mod",
        ),
        Defense(
            "shuffle",
            "anonymised updates: a shuffler strips client ids and permutes each round's updates",
            "every raw update, in a random order each round, without client ids",
            client_ids=False,
        ),
    )
}
ALL_DEFENSES = tuple(DEFENSES)
