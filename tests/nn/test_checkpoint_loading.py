"""DHTTokenizer.from_dht_checkpoint on bad files: clear errors, nothing unsafe is run."""

import pytest
import torch

from dhtgraph.nn import DHTConfig, DHTTokenizer


class _WritesAFile:
    """Unpickling this object would call ``open(marker, 'w')``, creating the marker."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _r2v_state_dict():
    return DHTTokenizer(DHTConfig.preset("r2v")).state_dict()


def test_a_valid_state_dict_loads(tmp_path):
    path = tmp_path / "ok.pth"
    state = _r2v_state_dict()
    torch.save(state, path)
    model = DHTTokenizer.from_dht_checkpoint(path)
    assert not model.training
    assert torch.equal(model.state_dict()["linear.weight"], state["linear.weight"])


def test_garbage_file_is_a_value_error_naming_path(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(bytes(range(256)) * 3)
    with pytest.raises(ValueError, match="Expected 'path' to be a PyTorch state dict") as info:
        DHTTokenizer.from_dht_checkpoint(path)
    assert "weights_only=False" not in str(info.value)


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"linear.weight": _WritesAFile(marker)}, path)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"'path'.*cannot be loaded safely.*Unsupported global") \
            as info:
        DHTTokenizer.from_dht_checkpoint(path)
    assert not marker.exists()
    # torch's own advice (weights_only=False, i.e. run the file's code) is not passed on,
    # neither in the message nor in a chained exception.
    assert "weights_only=False" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        DHTTokenizer.from_dht_checkpoint(tmp_path / "absent.pth")


def test_unknown_override_lists_the_config_fields(tmp_path):
    path = tmp_path / "ok.pth"
    torch.save(_r2v_state_dict(), path)
    with pytest.raises(TypeError, match=r"Unknown from_dht_checkpoint option\(s\) \['iotaa'\]; "
                                        r"known: \[.*'iota'.*\]"):
        DHTTokenizer.from_dht_checkpoint(path, iotaa=3)


def test_non_tensor_value_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pth"
    state = _r2v_state_dict()
    state["linear.bias"] = 3
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"to be a Tensor \(got 'linear.bias' \(int\)\)"):
        DHTTokenizer.from_dht_checkpoint(path)


def test_missing_file_error_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected 'path' to be an existing checkpoint"):
        DHTTokenizer.from_dht_checkpoint(tmp_path / "absent.pth")


def test_directory_is_a_value_error_naming_path(tmp_path):
    with pytest.raises(ValueError, match="Expected 'path' to be a checkpoint file .*directory"):
        DHTTokenizer.from_dht_checkpoint(tmp_path)


def test_truncated_file_is_a_value_error_naming_path(tmp_path):
    path = tmp_path / "ok.pth"
    torch.save(_r2v_state_dict(), path)
    data = path.read_bytes()
    cut = tmp_path / "truncated.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="Expected 'path' to be a (complete )?PyTorch state dict"):
        DHTTokenizer.from_dht_checkpoint(cut)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(tmp_path, bad):
    path = tmp_path / "nan.pth"
    state = _r2v_state_dict()
    state["linear.weight"][0, 0] = bad
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"finite .*'linear.weight'"):
        DHTTokenizer.from_dht_checkpoint(path)


def test_checkpoint_uses_the_r2v_preset(tmp_path):
    from dhtgraph.nn.config import DHTConfig

    path = tmp_path / "ok.pth"
    torch.save(_r2v_state_dict(), path)
    assert DHTTokenizer.from_dht_checkpoint(path).config == DHTConfig.preset("r2v")
