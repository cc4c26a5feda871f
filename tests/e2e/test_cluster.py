"""``denoise --scheduler``: files (or one Zarr store's blocks) as tasks on a Dask cluster of real worker
processes give the bytes the one-process run gives, and a bad file is named while the others are written."""
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from selfdenoise import api  # noqa: E402
from selfdenoise.core import cluster  # noqa: E402
from selfdenoise.core.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       scheduler_kwargs={"dashboard_address": ":0"})
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()




@pytest.fixture
def one_thread():
    """The one-process run with one thread, as each worker has: convolutions sum in an order that depends on the
    thread count on some CPUs (last-bit differences), and the claim is equal bytes for equal threads."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def folder(tmp_path):
    """Three small gray images in three formats, and one corrupt file."""
    rng = np.random.default_rng(1)
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray((rng.random((30, 34)) * 255).astype(np.uint8)).save(d / "a.png")
    tifffile.imwrite(d / "b.tif", (rng.random((3, 28, 26)) * 65535).astype(np.uint16), photometric="minisblack")
    np.save(d / "c.npy", rng.random((25, 31)).astype(np.float32))
    (d / "d.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return d


def outputs(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_a_cluster_gives_the_bytes_of_one_process_and_names_the_bad_file(tmp_path, folder, model_file, client,
                                                                         one_thread):
    one = api.denoise_files([folder], tmp_path / "one", model=model_file, tile=16)
    many = api.denoise_files([folder], tmp_path / "many", model=model_file, tile=16, scheduler=client)
    assert [r["input"] for r in many] == [r["input"] for r in one]
    assert ["error" in r for r in many] == [False, False, False, True]
    assert "d.png" in many[3]["error"] and many[3]["error"] == one[3]["error"]
    assert sorted(outputs(tmp_path / "many")) == ["a.png", "b.tif", "c.npy"]
    assert outputs(tmp_path / "many") == outputs(tmp_path / "one")
    assert len(client.run(lambda: __import__("os").getpid())) == 2  # two worker processes


def test_one_zarr_store_spread_over_the_cluster_by_blocks(tmp_path, model_file, client, one_thread):
    data = (np.random.default_rng(2).random((6, 21, 19)) * 65535).astype(np.uint16)
    z = zarr.create_array(str(tmp_path / "in.zarr"), shape=data.shape, chunks=(2, 8, 8), dtype=data.dtype)
    z[:] = data
    one = api.denoise_files([tmp_path / "in.zarr"], tmp_path / "one.zarr", model=model_file, axes="ZYX")
    many = api.denoise_files([tmp_path / "in.zarr"], tmp_path / "many.zarr", model=model_file, axes="ZYX",
                             scheduler=client)
    assert many[0]["blocks"] == one[0]["blocks"] == 3
    np.testing.assert_array_equal(zarr.open(str(tmp_path / "many.zarr"))[:], zarr.open(str(tmp_path / "one.zarr"))[:])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary store left


def test_cli_on_a_running_cluster(tmp_path, folder, model_file, client, one_thread):
    api.denoise_files([folder], tmp_path / "one", model=model_file)
    r = subprocess.run([sys.executable, "-m", "selfdenoise", "denoise", str(folder), "-o", str(tmp_path / "many"),
                        "--model", str(model_file), "--scheduler", client.scheduler.address, "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("error:") == 2 and "Traceback" not in r.stderr, r.stderr
    assert "d.png: truncated or corrupt" in r.stderr and "1 of 4 inputs failed" in r.stderr
    assert outputs(tmp_path / "many") == outputs(tmp_path / "one")
    assert len(r.stdout.strip().splitlines()) == 3


def test_local_cluster_and_bad_schedulers():
    with cluster.connect("local:1") as c:
        assert cluster.run_tasks(c, pow, [(2, 3), (3, 2)]) == [8, 9]
        assert c.cluster.workers and len(c.run(lambda: 0)) == 1
    for bad, message in [("local:0", "expected local:N"), ("local:x", "expected local:N")]:
        with pytest.raises(InputError, match=message):
            with cluster.connect(bad):
                pass


def test_volumes_of_a_zarr_store_spread_over_the_cluster(tmp_path, client, volume_model):
    """A model of volumes: one task per ZYX volume where no chunk spans two; all in one task where they do."""
    model = volume_model
    data = (np.random.default_rng(3).random((3, 5, 21, 19)) * 65535).astype(np.uint16)
    for chunks in ((1, 2, 8, 8), (2, 2, 8, 8)):
        z = zarr.create_array(str(tmp_path / f"in{chunks[0]}.zarr"), shape=data.shape, chunks=chunks, dtype=data.dtype)
        z[:] = data
        one = api.denoise_files([tmp_path / f"in{chunks[0]}.zarr"], tmp_path / f"one{chunks[0]}.zarr", model=model,
                                axes="TZYX")
        many = api.denoise_files([tmp_path / f"in{chunks[0]}.zarr"], tmp_path / f"many{chunks[0]}.zarr", model=model,
                                 axes="TZYX", scheduler=client)
        assert many[0]["blocks"] == one[0]["blocks"] == 3
        np.testing.assert_array_equal(zarr.open(str(tmp_path / f"many{chunks[0]}.zarr"))[:],
                                      zarr.open(str(tmp_path / f"one{chunks[0]}.zarr"))[:])
