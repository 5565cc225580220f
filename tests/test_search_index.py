"""The Tantivy search index is derived from the store and kept consistent with it, on both
engines: `libgate reindex` rebuilds it; a process catches its index up after another process
loaded (into the same index directory or another one: another machine on the same
PostgreSQL); `kill -9` in the middle of a load leaves store and index consistent after the next
catch-up; a second writer never crashes; a checkout in another process is seen by the
availability limit at once, and rewrites no index document; CJK and Japanese searches answer
the same from an index the loader wrote, one caught up from the store and one rebuilt."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.catalogue.query import Query, SortKey
from gateway.catalogue.search import search
from gateway.catalogue.textindex import index_for, store_state
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
from gateway.cql.to_query import cql_to_query
from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from tests.circulation_support import SETTINGS, build_library
from tests.conftest import FIXTURES, REAL
from tests.support import cnmarc, iso

RULE = Policy.from_settings(Settings()).availability
PROFILES = {p.name: p for p in BUILTIN_PROFILES}
REPO = Path(__file__).resolve().parent.parent
QUERIES = [
    "cql.allRecords = 1",
    "历史",
    "中国",
    'dc.title adj "发展报告"',
    "dc.title = 中国 not dc.title = 明代",
    "dc.title = pride*",
    "dc.title = 中*",
    "アイヌ語",
    "アイヌ",
    "タイトル",
    "自負と偏見",
    "京助",
    "猫",
    "吾輩は猫",
    "劍橋",
    "第1*",
    "测试书目",
    "dc.date > 2000",
]
FILES = [
    (FIXTURES / "marc" / "demo_main.iso", "libgate", "main"),
    (REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso", "bnu", "main"),
    (FIXTURES / "marc" / "japanese" / "japanese_cnmarc.iso", "libgate", "japanese"),
]


def answers(store: Store) -> dict[tuple[str, str], tuple[int, list[str]]]:
    found = {}
    for database in ("main", "japanese"):
        for text in QUERIES:
            query = Query(cql_to_query(text).root, (SortKey("record"),))
            result = search(store, query, database, availability=RULE, limit=100)
            found[(database, text)] = (result.total, sorted(h.record_id for h in result.hits))
    return found


def load(store: Store, path: Path, profile: str, database: str) -> None:
    options = LoadOptions(database=DatabaseSettings(name=database), profile=PROFILES[profile])
    Loader(store, options).load([path])


def config(path: Path, url: str, index: Path, batch_size: int = 500) -> Path:
    path.write_text(
        f'[storage]\nurl = "{url}"\nsearch_index_dir = "{index}"\n'
        f"[loader]\nbatch_size = {batch_size}\nworkers = 0\n"
        '[[databases]]\nname = "main"\n[[databases]]\nname = "japanese"\n',
        encoding="utf-8",
    )
    return path


def libgate(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


def numbered(path: Path, count: int, prefix: str = "K") -> Path:
    path.write_bytes(
        iso(
            *(
                cnmarc(
                    f"{prefix}{n:06d}", f"第{n}号测试书目", isbn="", barcodes=(f"{prefix}B{n:07d}",)
                )
                for n in range(count)
            )
        )
    )
    return path


@pytest.fixture
def loaded(store_url: str, tmp_path: Path) -> Store:
    store = open_store(store_url, search_index_dir=str(tmp_path / "index-a"))
    migrate(store)
    for path, profile, database in FILES:
        load(store, path, profile, database)
    return store


def test_reindex_rebuilds_the_same_index(loaded: Store, store_url: str, tmp_path: Path) -> None:
    written = answers(loaded)
    assert written[("main", "cql.allRecords = 1")][0] > 10
    assert written[("japanese", "アイヌ")][0] >= 1
    other = tmp_path / "index-b"
    done = libgate(config(tmp_path / "b.toml", store_url, other), "reindex")
    assert done.returncode == 0, done.stderr
    assert (other / "meta.json").exists()
    with open_store(store_url, search_index_dir=str(other)) as rebuilt:
        assert answers(rebuilt) == written
    loaded.close()


def test_catch_up_after_another_process_loaded(
    loaded: Store, store_url: str, tmp_path: Path
) -> None:
    before = answers(loaded)
    data = numbered(tmp_path / "more.iso", 300)
    # Another machine: its own index directory, the same store.
    elsewhere = config(tmp_path / "elsewhere.toml", store_url, tmp_path / "index-b", 50)
    done = libgate(elsewhere, "load", str(data))
    assert done.returncode == 0, done.stderr
    after = answers(loaded)  # index-a catches up from the store's change sequence
    assert after[("main", "测试书目")][0] == 300
    assert (
        after[("main", "cql.allRecords = 1")][0] == before[("main", "cql.allRecords = 1")][0] + 300
    )
    assert after[("japanese", "アイヌ")] == before[("japanese", "アイヌ")]
    # Another process on this machine: it writes index-a itself; this process's reader reloads.
    same = config(tmp_path / "same.toml", store_url, tmp_path / "index-a", 50)
    done = libgate(same, "load", str(numbered(tmp_path / "third.iso", 120, "L")))
    assert done.returncode == 0, done.stderr
    index = index_for(loaded)
    with loaded.read() as tx:
        assert index.state.seq == store_state(tx).seq  # written by the loader, not caught up
    assert answers(loaded)[("main", "测试书目")][0] == 420
    loaded.close()


def test_a_second_writer_neither_waits_forever_nor_crashes(
    loaded: Store, store_url: str, tmp_path: Path
) -> None:
    index = index_for(loaded)
    data = numbered(tmp_path / "more.iso", 200)
    with index.writer():  # this process holds the writer during another process's load
        done = libgate(
            config(tmp_path / "same.toml", store_url, tmp_path / "index-a", 50), "load", str(data)
        )
        assert done.returncode == 0, done.stderr
        # Searching while the writer is taken: no catch-up, no error, the index as it was.
        assert search(loaded, cql_to_query("测试书目"), "main", availability=RULE).total == 0
    assert search(loaded, cql_to_query("测试书目"), "main", availability=RULE).total == 200
    loaded.close()


@pytest.mark.slow
def test_kill_9_mid_load_then_catch_up_equals_a_clean_reindex(
    store_url: str, tmp_path: Path
) -> None:
    data = numbered(tmp_path / "big.iso", 4000)
    index_a = tmp_path / "index-a"
    load_config = config(tmp_path / "load.toml", store_url, index_a, 25)
    with open_store(store_url) as store:
        migrate(store)
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(load_config), "load", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with store.read() as tx:
                stored = int(tx.scalar("SELECT count(*) FROM bib_records"))
            if stored >= 300 or process.poll() is not None:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the load finished before the kill; make the file bigger"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    with open_store(store_url, search_index_dir=str(index_a)) as crashed:
        with crashed.read() as tx:
            stored = int(tx.scalar("SELECT count(*) FROM bib_records"))
        assert 0 < stored < 4000
        caught_up = answers(crashed)
        assert caught_up[("main", "cql.allRecords = 1")][0] == stored
        assert caught_up[("main", "测试书目")][0] == stored
    with open_store(store_url, search_index_dir=str(tmp_path / "index-clean")) as clean:
        index_for(clean).rebuild(clean)
        assert answers(clean) == caught_up
    # The interrupted load, run again, finishes store and index together.
    done = libgate(load_config, "load", str(data))
    assert done.returncode == 0, done.stderr
    with open_store(store_url, search_index_dir=str(index_a)) as finished:
        assert answers(finished)[("main", "测试书目")][0] == 4000


CHECKOUT = """
import sys
from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.store import open_store
from tests.circulation_support import SETTINGS, START
store = open_store(sys.argv[1])
result = Engine(store, Policy.from_settings(SETTINGS), FixedClock(START)).checkout("B", "O1")
print(result.ok)
"""


def test_availability_follows_a_checkout_made_by_another_process(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    build_library(store, tmp_path)
    rule = Policy.from_settings(SETTINGS).availability
    query = Query(cql_to_query("书名T-ONE").root)

    def found(available_only: bool) -> int:
        return search(store, query, "main", availability=rule, available_only=available_only).total

    assert (found(False), found(True)) == (1, 1)
    with store.read() as tx:
        seq_before = store_state(tx).seq
    state_before = index_for(store).state
    done = subprocess.run(
        [sys.executable, "-c", CHECKOUT, store_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.stdout.strip() == "True", done.stderr
    assert (found(False), found(True)) == (1, 0)  # the only copy is on loan
    hit = search(store, query, "main", availability=rule).hits[0]
    assert (hit.copies, hit.available) == (1, 0)
    with store.read() as tx:
        assert store_state(tx).seq == seq_before  # circulation wrote no catalogue change
    assert index_for(store).state == state_before  # and no index document was rewritten


def test_a_deleted_record_leaves_the_index_through_its_tombstone(
    store: Store, tmp_path: Path
) -> None:
    data = tmp_path / "gone.iso"
    data.write_bytes(iso(cnmarc("Z-1", "删除测试之书"), cnmarc("Z-2", "删除测试之二")))
    load(store, data, "libgate", "main")
    assert search(store, cql_to_query("删除测试"), "main", availability=RULE).total == 2
    with store.read() as tx:
        seq_before = store_state(tx).seq
    with store.write() as tx:  # no command deletes records yet: the trigger covers any DELETE
        tx.execute("DELETE FROM bib_records WHERE record_id = 'Z-1'")
    with store.read() as tx:
        assert store_state(tx).seq == seq_before + 1
    result = search(store, cql_to_query("删除测试"), "main", availability=RULE)
    assert [h.record_id for h in result.hits] == ["Z-2"]
