"""The healing engine's policy over decisions (dry run, rate limit, repeats),
the threshold the labels call for, and the circuit's backoff."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.healing import (
    Circuit,
    Decision,
    Earlier,
    Outcome,
    Policy,
    judge,
    recalibrated_cut,
    repeat_of,
    room,
)

NOW = 1_796_000_000.0


def retrain(target: str, episode: str = "") -> Decision:
    return Decision("data_drift", "retrain", target, "drifted", {}, episode)


def judged(
    decisions: list[Decision],
    policy: Policy,
    *,
    taken: int = 0,
    standing: dict[tuple[str, str], str] | None = None,
    earlier: dict[tuple[str, str], Earlier] | None = None,
) -> dict[str, list[str]]:
    """The targets of each kind of verdict: act, dry_run, rate_limited, repeat."""
    j = judge(
        decisions, policy=policy, taken=taken, standing=standing or {},
        earlier=earlier or {}, now=NOW,
    )  # fmt: skip
    found: dict[str, list[str]] = {"act": [d.target for d in j.act], "repeat": []}
    for v in j.settled:
        found.setdefault(v.outcome.value, []).append(v.decision.target)
    found["repeat"] = [v.decision.target for v in j.repeats]
    return found


class TestJudge:
    def test_acts_on_every_decision_of_a_rule_without_limit(self) -> None:
        assert judged([retrain("a"), retrain("b")], Policy()) == {
            "act": ["a", "b"],
            "repeat": [],
        }

    def test_a_dry_run_records_its_decisions_and_acts_on_none(self) -> None:
        found = judged([retrain("a"), retrain("b")], Policy(dry_run=True))

        assert found == {"act": [], "dry_run": ["a", "b"], "repeat": []}

    def test_decisions_past_the_hourly_limit_are_rate_limited(self) -> None:
        found = judged(
            [retrain("a"), retrain("b"), retrain("c")],
            Policy(max_actions_per_hour=5),
            taken=3,
        )

        assert found == {"act": ["a", "b"], "rate_limited": ["c"], "repeat": []}

    def test_a_dry_run_counts_against_its_limit_as_actions_would(self) -> None:
        found = judged([retrain("a"), retrain("b")], Policy(True, True, 1), taken=0)

        assert found == {"act": [], "dry_run": ["a"], "rate_limited": ["b"],
                         "repeat": []}  # fmt: skip

    def test_a_target_whose_earlier_action_stands_is_a_repeat(self) -> None:
        found = judged(
            [retrain("a"), retrain("b")],
            Policy(max_actions_per_hour=1),
            standing={("retrain", "a"): "a training of it is queued"},
        )

        # The repeat takes no room: b is acted on.
        assert found == {"act": ["b"], "repeat": ["a"]}

    def test_the_same_decision_twice_in_one_run_is_made_once(self) -> None:
        assert judged([retrain("a"), retrain("a")], Policy()) == {
            "act": ["a"],
            "repeat": ["a"],
        }


class TestRepeats:
    @pytest.mark.parametrize(
        ("outcome", "ago", "episode", "repeat"),
        [
            (Outcome.DONE, 60.0, "", False),  # its effect is `standing`'s to say
            (Outcome.DONE, 60.0, "e1", True),  # that episode is handled
            (Outcome.DONE, 60.0, "e0", False),  # a new episode
            (Outcome.DRY_RUN, 60.0, "", True),
            (Outcome.RATE_LIMITED, 60.0, "", True),
            (Outcome.RATE_LIMITED, 3601.0, "", False),  # not within the hour
            (Outcome.SKIPPED, 60.0, "", False),  # its dependency was left alone
            (Outcome.FAILED, 60.0, "", False),  # tried again: the circuit spaces it
        ],
    )
    def test_an_earlier_decision_makes_a_repeat_when(
        self, outcome: Outcome, ago: float, episode: str, repeat: bool
    ) -> None:
        decision = retrain("a", episode="e1" if episode else "")
        earlier = Earlier(outcome, NOW - ago, episode)

        why = repeat_of(decision, standing={}, earlier=earlier, now=NOW)

        assert (why is not None) is repeat


def test_room_is_the_limit_less_what_was_taken() -> None:
    assert room(Policy(max_actions_per_hour=3), 5) == 0
    assert room(Policy(max_actions_per_hour=0), 10**6) is None


class TestRecalibratedCut:
    def test_raises_the_threshold_past_the_false_alarms(self) -> None:
        scores = [1.1, 1.2, 1.3, 2.5, 3.0, 4.0]
        anomalous = [False, False, False, True, True, True]

        assert recalibrated_cut(scores, anomalous, 0.2) == 1.3

    def test_keeps_todays_threshold_when_its_alarms_are_good(self) -> None:
        assert recalibrated_cut([1.5, 2.0, 3.0], [True, True, False], 0.5) == 1.0

    def test_never_goes_below_todays_threshold(self) -> None:
        assert recalibrated_cut([0.4, 0.8, 1.5], [True, True, False], 0.0) == 1.5

    @given(
        st.lists(
            st.tuples(st.floats(0.0, 10.0), st.booleans()), min_size=1, max_size=40
        ),
        st.floats(0.0, 0.99),
    )
    def test_is_the_lowest_cut_meeting_the_target(
        self, labelled: list[tuple[float, bool]], target: float
    ) -> None:
        scores = np.array([s for s, _ in labelled])
        false = ~np.array([y for _, y in labelled])

        def share(cut: float) -> float:
            flagged = scores > cut
            return (
                float((flagged & false).sum() / flagged.sum()) if flagged.any() else 0.0
            )

        cut = recalibrated_cut(scores.tolist(), (~false).tolist(), target)

        assert cut >= 1.0
        assert share(cut) <= target
        lower = [c for c in [1.0, *scores.tolist()] if 1.0 <= c < cut]
        assert all(share(c) > target for c in lower)


class TestCircuit:
    def test_opens_after_enough_failures_and_lets_one_trial_through(self) -> None:
        circuit = Circuit("training_service", failures_to_open=2, base_s=30)

        assert circuit.failed(0.0, "ConnectError") is None
        opened = circuit.failed(1.0, "ConnectError")

        assert opened is not None
        assert (opened.action, opened.target) == ("open_circuit", "training_service")
        assert opened.evidence["failures"] == 2
        assert not circuit.allow(30.9)
        assert circuit.allow(31.0)

    def test_backs_off_twice_as_long_each_time_up_to_its_cap(self) -> None:
        circuit = Circuit("training_service", base_s=60, cap_s=200)
        backoffs = []
        for at in (0.0, 100.0, 300.0, 600.0):
            opened = circuit.failed(at, "timeout")
            assert opened is not None
            backoffs.append(opened.evidence["backoff_s"])

        assert backoffs == [60.0, 120.0, 200.0, 200.0]

    def test_a_success_closes_it_and_says_so_once(self) -> None:
        circuit = Circuit("training_service")
        circuit.failed(0.0, "timeout")

        closed = circuit.succeeded(61.0)

        assert closed is not None
        assert closed.action == "close_circuit"
        assert circuit.succeeded(62.0) is None
        reopened = circuit.failed(63.0, "timeout")
        assert reopened is not None
        assert reopened.evidence["backoff_s"] == 60.0  # the backoff starts over
