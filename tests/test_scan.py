"""hashmatch scan: every file one row with the right matches, bad files included, resumable, on Dask too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Set

import numpy as np
import pytest
from PIL import Image

import hashmatch
from hashmatch.errors import DatabaseNotFoundError, HashmatchError, InvalidInputError, MediaNotFoundError
from hashmatch.scan import read_results
from hashmatch.scan.results import ResultsWriter

from videos import textured, write_video

N_IMAGES = 2000
#: Below the 250x250 "oversized" image and above every other test image (at most 128x128).
MAX_PIXELS = 50_000


class Bucket:
    """A synthetic media tree, a database holding some of it, and what each file's row must say."""

    def __init__(self, root: Path, db: Path) -> None:
        self.root, self.db = root, db
        self.expected_uids: Dict[str, Set[str]] = {}  # relative path -> uids its row must match
        self.expected_error: Dict[str, str] = {}  # relative path -> error type of a bad file
        self.kind: Dict[str, str] = {}  # relative path -> media type sniffed

    def write(self, rel: str, data: bytes, kind: str, error: Optional[str] = None) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.kind[rel] = kind
        if error:
            self.expected_error[rel] = error
        else:
            self.expected_uids[rel] = set()
        return path


def _texture(rng: np.random.Generator) -> Image.Image:
    """A distinct 64..128 px image per call: a smooth colour field under sharp blocks (PDQ-stable under JPEG)."""
    side = int(rng.integers(64, 129))
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((side, side), Image.BICUBIC)).copy()
    for _ in range(10):
        x, y = rng.integers(0, side - 16, size=2)
        w, h = rng.integers(side // 6, side // 2, size=2)
        field[y:y + h, x:x + w] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return Image.fromarray(field)


def _encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bucket(tmp_path_factory) -> Bucket:
    tmp = tmp_path_factory.mktemp("scan")
    b = Bucket(tmp / "tree", tmp / "known.db")
    rng = np.random.default_rng(6)
    known: List[str] = []
    for i in range(N_IMAGES):
        im = _texture(rng)
        fmt = "JPEG" if i % 2 else "PNG"
        rel = f"images/{i % 7}/{i:05d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        b.write(rel, _encoded(im, fmt, quality=90) if fmt == "JPEG" else _encoded(im, fmt), "image")
        if i % 50 == 0:
            known.append(rel)
            if i % 200 == 0:  # a recompressed copy must match the stored original
                b.write(f"copies/{i:05d}-copy.jpg", _encoded(im.convert("RGB"), "JPEG", quality=60), "image")
    clips = {}
    for seed in (1, 2, 3):
        clips[seed] = write_video(tmp / f"clip{seed}.mp4", textured(seed, 128, 96, 45), 45, fps=15).read_bytes()
        b.write(f"videos/clip{seed}.mp4", clips[seed], "video")
    b.write("videos/clip1-copy.jpg", clips[1], "video")  # a video named like an image: content decides
    b.write("images/photo.mp4", _encoded(_texture(rng), "JPEG"), "image")  # and the other way round
    b.write("bad/corrupt.jpg", b"\xff\xd8\xff\xe0" + rng.bytes(3000), "image", "DecodeError")
    good_jpeg = _encoded(_texture(rng), "JPEG", quality=90)
    b.write("bad/truncated.jpg", good_jpeg[:len(good_jpeg) // 3], "image", "DecodeError")
    b.write("bad/empty.png", b"", "unknown", "DecodeError")
    b.write("bad/notes.txt", b"not media at all\n" * 20, "unknown", "DecodeError")
    b.write("bad/huge.png", _encoded(Image.new("RGB", (250, 250), (9, 99, 199)), "PNG"), "image",
            "ResourceLimitError")
    b.write("bad/truncated.mp4", clips[2][:len(clips[2]) // 2], "video", "DecodeError")
    with hashmatch.HashDB(b.db) as db:
        ids = db.add_many([b.root / rel for rel in known], source="test-list", labels=["known"])
        video_id = db.add(b.root / "videos/clip1.mp4", source="test-list", labels=["known-video"])
        uid = {i: db.get(i).uid for i in ids + [video_id]}
    for rel, entry in zip(known, ids):
        b.expected_uids[rel] = {uid[entry]}
        n = int(Path(rel).stem)
        if n % 200 == 0:
            b.expected_uids[f"copies/{n:05d}-copy.jpg"] = {uid[entry]}
    b.expected_uids["videos/clip1.mp4"] = b.expected_uids["videos/clip1-copy.jpg"] = {uid[video_id]}
    return b


def _by_rel(rows: List[dict], prefix: str) -> Dict[str, dict]:
    """Rows by path relative to the scanned root, without the timing field; duplicates fail."""
    out: Dict[str, dict] = {}
    for row in rows:
        assert row["path"].startswith(prefix), row["path"]
        rel = row["path"][len(prefix):].lstrip("/")
        assert rel not in out, f"{rel} has two rows"
        out[rel] = {k: v for k, v in row.items() if k not in ("seconds", "path")}
    return out


def _without_messages(rows: Dict[str, dict]) -> Dict[str, dict]:
    return {rel: {**row, "error": bool(row["error"])} for rel, row in rows.items()}


def _check_rows(b: Bucket, rows: Dict[str, dict]) -> None:
    assert set(rows) == set(b.kind), "one row per file, no more, no less"
    for rel, row in rows.items():
        assert row["media_type"] == b.kind[rel], rel
        if rel in b.expected_error:
            assert row["status"] == "error", rel
            assert row["error_type"] == b.expected_error[rel] and row["error"], rel
            continue
        assert row["status"] == "ok", (rel, row["error"])
        assert {m["uid"] for m in row["matches"]} == b.expected_uids[rel], rel
        if row["media_type"] == "image":
            assert row["formats"] == ["pdq"] and len(row["pdq"]) == 64 and row["quality"] >= 50
        else:
            assert row["vpdq_frames"] == 3 and len(row["video_md5"]) == 32
            assert set(row["formats"]) == {"vpdq", "tmk_pdqf", "video_md5"}


@pytest.fixture(scope="module")
def reference(bucket, tmp_path_factory) -> Dict[str, dict]:
    out = tmp_path_factory.mktemp("reference") / "results.jsonl"
    summary = hashmatch.scan(bucket.root, bucket.db, out, workers=2, max_pixels=MAX_PIXELS)
    rows = _by_rel(read_results(str(out)), str(bucket.root))
    assert summary.files == summary.scanned == len(rows) == len(bucket.kind)
    assert summary.errors == len(bucket.expected_error)
    assert summary.matched_files == sum(1 for uids in bucket.expected_uids.values() if uids)
    return rows


def test_local_scan_gives_every_file_one_row_with_its_matches(bucket, reference):
    _check_rows(bucket, reference)
    copy = reference["copies/00200-copy.jpg"]["matches"][0]
    assert copy["format"] == "pdq" and 0 < copy["distance"] <= 31 and copy["labels"] == ["known"]
    assert {m["format"] for m in reference["videos/clip1-copy.jpg"]["matches"]} == {"vpdq", "tmk_pdqf", "video_md5"}
    assert "max_pixels" in reference["bad/huge.png"]["error"]


def test_scan_against_postgresql_gives_the_same_rows(bucket, reference, pg_cluster, tmp_path):
    url = pg_cluster.new_database()
    with hashmatch.HashDB(bucket.db, read_only=True) as source, hashmatch.HashDB(url) as db:
        db.merge_records(source.records())  # the same entries, uids included
    summary = hashmatch.scan(bucket.root, url, tmp_path / "pg.jsonl", workers=2, max_pixels=MAX_PIXELS)
    rows = _by_rel(read_results(str(tmp_path / "pg.jsonl")), str(bucket.root))
    assert summary.files == len(bucket.kind)

    def comparable(rows):
        return {rel: {**row, "matches": sorted((m["uid"], m["format"], m["distance"]) for m in row["matches"])}
                for rel, row in _without_messages(rows).items()}

    assert comparable(rows) == comparable(reference)


def test_scan_against_a_missing_postgresql_database_fails_and_creates_nothing(bucket, pg_cluster, tmp_path):
    url = pg_cluster.url("no_such_scan_db")
    with pytest.raises(DatabaseNotFoundError):
        hashmatch.scan(bucket.root, url, tmp_path / "r.jsonl", workers=1, max_pixels=MAX_PIXELS)
    assert not (tmp_path / "r.jsonl").exists(), "no results file for a scan that could not open its database"
    with pytest.raises(DatabaseNotFoundError):  # and the failed scan did not create it
        hashmatch.HashDB(url, read_only=True)


def test_read_only_postgresql_database_refuses_writes(bucket, pg_cluster):
    url = pg_cluster.new_database()
    with hashmatch.HashDB(bucket.db, read_only=True) as source, hashmatch.HashDB(url) as db:
        db.merge_records(source.records())
    with hashmatch.HashDB(url, read_only=True) as db:
        assert len(db.match(bucket.root / "images/0/00000.png")) == 1
        with pytest.raises(InvalidInputError, match="read_only"):
            db.add(bucket.root / "images/1/00001.jpg")


def test_memory_bucket_to_parquet(bucket, reference, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    for rel in bucket.kind:
        fs.pipe(f"/scan-bucket/{rel}", (bucket.root / rel).read_bytes())
    try:
        summary = hashmatch.scan("memory://scan-bucket", bucket.db, tmp_path / "r.parquet", workers=2,
                                 max_pixels=MAX_PIXELS)
    finally:
        fs.rm("/scan-bucket", recursive=True)
    rows = _by_rel(read_results(str(tmp_path / "r.parquet")), "memory:///scan-bucket")
    assert summary.files == len(bucket.kind)
    _check_rows(bucket, rows)
    # The same rows as from the directory, but for error messages: a local file's names its path.
    assert _without_messages(rows) == _without_messages(reference)
    assert not (tmp_path / "r.parquet.journal.jsonl").exists()


def test_path_list_source_and_results_must_not_be_overwritten(bucket, tmp_path):
    listed = [str(bucket.root / rel) for rel in sorted(bucket.kind)[:40]]
    (tmp_path / "paths.txt").write_text("\n".join(listed + listed[:5]) + "\n")
    out = tmp_path / "r.jsonl"
    summary = hashmatch.scan(tmp_path / "paths.txt", bucket.db, out, workers=1, max_pixels=MAX_PIXELS)
    assert summary.files == 40 and sorted(r["path"] for r in read_results(str(out))) == sorted(listed)
    with pytest.raises(InvalidInputError, match="resume"):
        hashmatch.scan(tmp_path / "paths.txt", bucket.db, out)
    again = hashmatch.scan(tmp_path / "paths.txt", bucket.db, out, resume=True)
    assert again.scanned == 0 and again.files == 40 and len(read_results(str(out))) == 40


def test_bad_arguments_name_the_fix(bucket, tmp_path):
    with pytest.raises(InvalidInputError, match="engine"):
        hashmatch.scan(bucket.root, bucket.db, tmp_path / "r.jsonl", engine="spark")
    with pytest.raises(InvalidInputError, match=r"\.jsonl"):
        hashmatch.scan(bucket.root, bucket.db, tmp_path / "r.csv")
    with pytest.raises(MediaNotFoundError, match="db add"):
        hashmatch.scan(bucket.root, tmp_path / "missing.db", tmp_path / "r.jsonl")
    with pytest.raises(MediaNotFoundError, match="directory, a file of paths or a URL"):
        hashmatch.scan(tmp_path / "nowhere", bucket.db, tmp_path / "r.jsonl")
    assert not (tmp_path / "missing.db").exists(), "a scan never creates the database"


def test_read_only_database_refuses_writes(bucket):
    db = hashmatch.HashDB(bucket.db, read_only=True)
    try:
        assert len(db.match(bucket.root / "images/0/00000.png")) == 1
        with pytest.raises(InvalidInputError, match="read_only"):
            db.add(bucket.root / "images/1/00001.jpg")
    finally:
        db.close()


def test_resume_drops_a_torn_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    writer = ResultsWriter(str(out))
    writer.write([{"path": "a", "status": "ok", "matches": []}, {"path": "b", "status": "ok", "matches": []}])
    writer.close()
    with open(out, "ab") as f:
        f.write(b'{"path": "c", "stat')  # what a crash mid-write leaves
    resumed = ResultsWriter(str(out), resume=True)
    assert set(resumed.done) == {"a", "b"}
    resumed.write([{"path": "c", "status": "ok", "matches": []}])
    resumed.close()
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["a", "b", "c"]


def test_parquet_resume_from_its_journal_and_from_a_finished_file(tmp_path):
    from hashmatch.scan.worker import empty_row, error_row

    out = tmp_path / "r.parquet"
    writer = ResultsWriter(str(out))
    writer.write([empty_row("a"), error_row("b", "DecodeError", "bad")])
    writer.close(complete=False)  # interrupted: the journal stays, no Parquet yet
    assert not out.exists() and (tmp_path / "r.parquet.journal.jsonl").exists()
    resumed = ResultsWriter(str(out), resume=True)
    assert set(resumed.done) == {"a", "b"}
    resumed.write([empty_row("c")])
    resumed.close()
    assert [r["path"] for r in read_results(str(out))] == ["a", "b", "c"]
    assert not (tmp_path / "r.parquet.journal.jsonl").exists()
    extended = ResultsWriter(str(out), resume=True)  # a finished scan, resumed after new files arrived
    assert set(extended.done) == {"a", "b", "c"}
    extended.write([empty_row("d")])
    extended.close()
    rows = read_results(str(out))
    assert [r["path"] for r in rows] == ["a", "b", "c", "d"] and rows[1]["error"] == "bad"


class _PoisonedEngine:
    """Runs batches in-process; a batch holding a poison file fails as a pool whose worker died."""

    capacity = 3

    def __init__(self, poison: Set[str]) -> None:
        self.poison, self.done, self.submitted = poison, [], []

    def submit(self, tasks):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        from hashmatch.scan.worker import empty_row

        self.submitted.append([p for p, _ in tasks])
        future = Future()
        if any(p in self.poison for p, _ in tasks):
            future.set_exception(BrokenProcessPool("a worker died"))
        else:
            future.set_result([{**empty_row(p), "status": "ok"} for p, _ in tasks])
        self.done.append(future)
        return future

    def wait_any(self):
        done, self.done = self.done, []
        return done

    def result(self, future):
        return future.result()

    def recover(self, error):
        return True


def _run_driver(engine, paths: List[str], out: Path) -> None:
    from hashmatch.scan.driver import Progress, batches, run

    writer = ResultsWriter(str(out))
    try:
        run(engine, batches(paths, 4, False), writer, Progress(len(paths), writer.counts, False))
    finally:
        writer.close()


def test_a_file_that_kills_its_worker_is_pinned_down_and_the_rest_of_its_batch_kept(tmp_path):
    paths = [f"f{i:02d}" for i in range(20)]
    engine = _PoisonedEngine({"f07"})
    _run_driver(engine, paths, tmp_path / "r.jsonl")
    rows = {r["path"]: r for r in read_results(str(tmp_path / "r.jsonl"))}
    assert len(rows) == 20 == len(read_results(str(tmp_path / "r.jsonl")))
    assert rows["f07"]["error_type"] == "WorkerCrashed"
    assert all(r["status"] == "ok" for p, r in rows.items() if p != "f07")
    assert ["f07"] in engine.submitted, "retried alone"


def test_workers_that_always_fail_stop_the_scan_without_blaming_files(tmp_path):
    from hashmatch.scan.driver import WorkersFailingError

    paths = [f"f{i:02d}" for i in range(20)]
    with pytest.raises(WorkersFailingError, match="resume"):
        _run_driver(_PoisonedEngine(set(paths)), paths, tmp_path / "r.jsonl")
    assert read_results(str(tmp_path / "r.jsonl")) == [], "no file is blamed for broken workers"


def _rows_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _cli(*args: str) -> List[str]:
    return [sys.executable, "-m", "hashmatch.cli", "scan", *args]


def test_cli_scan_killed_with_sigkill_then_resumed_equals_an_uninterrupted_scan(bucket, reference, tmp_path):
    out = tmp_path / "r.jsonl"
    args = [str(bucket.root), "--db", str(bucket.db), "--out", str(out), "--workers", "2", "--batch-size", "4",
            "--max-pixels", str(MAX_PIXELS)]
    proc = subprocess.Popen(_cli(*args, "--no-progress"), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _rows_in(out) < 200 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the scan and its workers, as a crash or the OOM killer would
    proc.wait()
    killed_at = _rows_in(out)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert 0 < killed_at < len(bucket.kind), "the kill must land mid-scan"
    done = subprocess.run(_cli(*args, "--resume"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(bucket.kind)} rows" in done.stdout
    assert "file/s" in done.stderr  # the progress bar
    rows = _by_rel(read_results(str(out)), str(bucket.root))
    assert rows == reference


def test_dask_scan_survives_a_killed_worker(bucket, reference, tmp_path):
    from distributed import Client, LocalCluster

    out = tmp_path / "r.jsonl"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed_at: List[int] = []

        def kill_one_worker() -> None:
            deadline = time.monotonic() + 120
            while _rows_in(out) < 300 and time.monotonic() < deadline:
                time.sleep(0.01)
            killed_at.append(_rows_in(out))
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_one_worker)
        killer.start()
        summary = hashmatch.scan(bucket.root, bucket.db, out, engine="dask", scheduler=client, batch_size=8,
                                 max_pixels=MAX_PIXELS)
        killer.join()
        assert victim not in client.run(os.getpid).values(), "the worker was killed (and replaced)"
    assert 0 < killed_at[0] < len(bucket.kind), "the kill must land mid-scan"
    assert summary.files == len(bucket.kind)
    assert _by_rel(read_results(str(out)), str(bucket.root)) == reference


def test_dask_engine_local_cluster_by_default(bucket, tmp_path):
    listed = [str(bucket.root / rel) for rel in sorted(bucket.kind)[-30:]]
    (tmp_path / "paths.txt").write_text("\n".join(listed))
    summary = hashmatch.scan(tmp_path / "paths.txt", bucket.db, tmp_path / "r.parquet", engine="dask", workers=1)
    assert summary.files == 30 and summary.ok + summary.errors == 30
    assert isinstance(summary.files_per_second, float)
    with pytest.raises(HashmatchError, match="scheduler"):
        hashmatch.scan(bucket.root, bucket.db, tmp_path / "x.jsonl", scheduler="tcp://127.0.0.1:1")
