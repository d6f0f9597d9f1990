"""write_atomic: the one way files are written, and what its failures say."""

import errno
import os
from types import SimpleNamespace

import pytest

from learner import files
from learner.files import write_atomic


def failing_writer(f):
    f.write(b"half a checkpoint")
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 232576")


@pytest.mark.parametrize("free, raised", [(4096, OSError), (10 << 30, RuntimeError)])
def test_a_writer_that_fails_on_a_full_disk_raises_no_space(tmp_path, monkeypatch, free,
                                                             raised):
    """torch.save says only 'unexpected pos' when the disk fills mid-write: that was a
    traceback, not the one line a full disk gets."""
    path = tmp_path / "latest.pt"
    path.write_bytes(b"the previous checkpoint")
    monkeypatch.setattr(files.os, "statvfs",
                        lambda d: SimpleNamespace(f_bavail=free // 4096, f_frsize=4096))
    with pytest.raises(raised) as err:
        write_atomic(str(path), failing_writer)
    if raised is OSError:
        assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
        assert isinstance(err.value.__cause__, RuntimeError)
    assert path.read_bytes() == b"the previous checkpoint"
    assert os.listdir(tmp_path) == ["latest.pt"]  # no temporary file left
