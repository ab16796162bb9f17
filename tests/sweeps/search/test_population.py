"""A search's saves for --resume: a kill at any moment leaves one whole save, never a mix of two."""

import json

import pytest

from jaxbp.sweeps.search.population import STATE, load, write


def saved(epoch: int) -> tuple[dict[int, bytes], dict[int, list[dict]]]:
    """Three configs' states and histories as of ``epoch`` (the states: bytes that say which epoch they are)."""
    return ({i: f"config {i} after epoch {epoch}".encode() for i in range(3)},
            {i: [{"epoch": e, "validation_accuracy": 0.1 * i} for e in range(1, epoch + 1)] for i in range(3)})


class Killed(Exception):
    pass


def test_a_save_cut_short_leaves_the_one_before_whole(tmp_path):
    states, histories = saved(2)
    write(tmp_path, states.items(), histories, {"generation": 1})
    later_states, later_histories = saved(4)

    def cut_short():  # the process dies after writing the next save's first state
        yield 0, later_states[0]
        raise Killed

    with pytest.raises(Killed):
        write(tmp_path, cut_short(), later_histories, {"generation": 2})
    assert load(tmp_path) == ({"generation": 1}, states, histories)
    write(tmp_path, later_states.items(), later_histories, {"generation": 2})  # the next whole save
    assert load(tmp_path) == ({"generation": 2}, later_states, later_histories)
    assert len(list(tmp_path.glob("*.state"))) == 3  # the earlier saves' files are gone
    assert not list(tmp_path.glob("*.tmp"))


def test_nothing_saved_is_none_and_a_save_with_plainly_named_files_loads(tmp_path):
    assert load(tmp_path) is None
    states, histories = saved(2)
    for i, blob in states.items():
        (tmp_path / f"{i}.state").write_bytes(blob)
    (tmp_path / STATE).write_text(json.dumps({"generation": 1, "histories": histories}))
    assert load(tmp_path) == ({"generation": 1}, states, histories)
