"""Fixed windows per subject: counting, expiry, the refusal."""

from __future__ import annotations

from atalaia.core.ratelimit import MAX_OPEN_WINDOWS, RateRule, Windows, retry_after_s


class TestWindows:
    def test_counts_each_subject_apart(self) -> None:
        windows = Windows(RateRule("r", limit=5))

        windows.hit("alice", now=0.0)
        windows.hit("alice", now=1.0)
        bob = windows.hit("bob", now=1.0)

        assert windows.current("alice", now=2.0).hits == 2
        assert bob.hits == 1

    def test_a_window_opens_at_the_first_hit_and_lasts_window_s(self) -> None:
        windows = Windows(RateRule("r", limit=5, window_s=10))

        first = windows.hit("alice", now=3.0)
        windows.hit("alice", now=12.9)

        assert first.ends_at == 13.0
        assert first.hits == 2
        assert windows.hit("alice", now=13.0).hits == 1

    def test_sweep_forgets_ended_windows(self) -> None:
        windows = Windows(RateRule("r", limit=5, window_s=10))
        windows.hit("old", now=0.0)
        windows.hit("new", now=5.0)

        windows.sweep(now=10.0)

        assert set(windows.open) == {"new"}

    def test_ended_windows_are_dropped_when_too_many_are_open(self) -> None:
        windows = Windows(RateRule("r", limit=5, window_s=10))
        for i in range(MAX_OPEN_WINDOWS):
            windows.hit(f"s{i}", now=0.0)

        windows.hit("late", now=20.0)

        assert set(windows.open) == {"late"}


class TestRateRule:
    def test_a_zero_limit_turns_the_rule_off(self) -> None:
        assert not RateRule("r", limit=0).on
        assert RateRule("r", limit=1).on

    def test_refusal_names_the_rule_and_when_to_retry(self) -> None:
        refusal = RateRule("per_minute", limit=100).refuse("alice", 12.2)

        assert refusal.rule == "per_minute"
        assert refusal.retry_after == 13
        assert "'alice' made more than 100 requests in 60 s" in refusal.detail

    def test_retry_after_is_at_least_one_second(self) -> None:
        assert retry_after_s(0.0) == 1
        assert retry_after_s(-3.0) == 1
        assert retry_after_s(1.01) == 2
