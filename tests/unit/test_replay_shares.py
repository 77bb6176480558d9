"""How `gamify replay --processes N` splits the partitions (projections.replay.shares)."""

from __future__ import annotations

from projections.replay import shares


def test_work_is_balanced_largest_first_and_idle_partitions_left_out() -> None:
    work = {0: 100, 1: 10, 2: 60, 3: 50, 4: 0, 5: 40}
    groups = shares(work, 2)
    assert sorted(groups) == [[0, 5], [1, 2, 3]]  # 140 / 120 records
    assert sorted(p for g in groups for p in g) == [0, 1, 2, 3, 5]


def test_never_more_groups_than_partitions_with_work_and_at_least_one() -> None:
    assert shares({0: 5, 1: 0}, 4) == [[0]]
    assert shares({0: 0}, 3) == []
    assert shares({0: 1, 1: 1, 2: 1}, 0) == [[0, 1, 2]]
    assert len(shares({p: 1 for p in range(6)}, 3)) == 3


def test_a_huge_process_count_is_capped_before_anything_is_allocated() -> None:
    assert shares({0: 3, 1: 2}, 10**20) == [[0], [1]]
