"""Every face-engine call a use case makes for a caller takes that caller's share of the
decode slots (``services.callers.for_caller``; probe s9 D1): read in the services' source
(so a new endpoint cannot forget it), checked use case by use case with the fake analyser,
and played out with the real slots: one gate key's many large 1:1 requests do not queue
another key's behind them."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

from entryexit.biometrics.decode import DecodeSlots, ImageKind, current_slot_owner
from entryexit.domain.model import Decision, PhotoSource
from entryexit.services import kiosks as kiosks_module
from tests import chip_builder
from tests.fakes import FakeAnalyser
from tests.unit.services.test_kiosks import paired
from tests.unit.services.test_verification import chip
from tests.unit.services.world import GATE, MANAGER, OFFICER, OTHER_GATE, World

SERVICES = Path(kiosks_module.__file__).parent
ENGINE_METHODS = {
    "analyse",
    "analyse_reference",
    "analyse_references",
    "analyse_many",
    "analyse_burst",
    "check_frame",
}
ENGINES = {"_engine", "engine", "_frames"}
OWNERS = {"for_caller", "slot_owner"}
# Engine calls outside a with-block naming their caller, each with the reason.
EXEMPT = {
    # Called only from _decide and _overlapped, inside slot_owner(the checked key).
    ("captures.py", "_analyse"),
    # `entryexit compare` on the command line: nobody's request.
    ("comparison.py", "_analyse"),
}


def _unowned_engine_calls(path: Path) -> list[tuple[str, int]]:
    """(function, line) of each engine call in ``path`` not lexically inside a ``with`` whose
    items include ``for_caller(...)`` or ``slot_owner(...)``."""
    found: list[tuple[str, int]] = []

    def owned(with_node: ast.With) -> bool:
        return any(
            isinstance(item.context_expr, ast.Call)
            and isinstance(item.context_expr.func, ast.Name)
            and item.context_expr.func.id in OWNERS
            for item in with_node.items
        )

    def visit(node: ast.AST, function: str, inside: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function, inside = node.name, False
        if isinstance(node, ast.With) and owned(node):
            inside = True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ENGINE_METHODS
            and isinstance(node.func.value, ast.Attribute | ast.Name)
            and (getattr(node.func.value, "attr", None) or getattr(node.func.value, "id", None))
            in ENGINES
            and not inside
        ):
            found.append((function, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function, inside)

    visit(ast.parse(path.read_text()), "<module>", False)
    return found


def test_no_service_runs_the_face_engine_for_a_caller_without_naming_it() -> None:
    unowned = {
        (path.name, function, line)
        for path in SERVICES.glob("*.py")
        for function, line in _unowned_engine_calls(path)
        if (path.name, function) not in EXEMPT
    }
    assert unowned == set(), "wrap these engine calls in `with for_caller(actor):`"


def test_the_source_check_sees_an_engine_call_left_outside() -> None:
    """The check above can fail: an unwrapped call is found, a wrapped one is not."""
    source = (
        "def bare(self):\n    return self._engine.analyse(b'')\n"
        "def wrapped(self, actor):\n    with for_caller(actor):\n"
        "        return self._engine.analyse(b'')\n"
    )
    path = Path(__file__).with_name("_probe_source.tmp")
    try:
        path.write_text(source)
        assert _unowned_engine_calls(path) == [("bare", 2)]
    finally:
        path.unlink()


def test_each_use_case_runs_the_engine_as_its_caller() -> None:
    world = World()
    engine = world.engine
    engine.slot_owners.clear()
    world.verifications.verify(GATE, b"face:1", b"face:1")
    assert engine.slot_owners == [GATE.key_id] * 2
    pki = chip_builder.make_pki()
    chip_world = World(trusted_cscas=[pki.csca])
    chip_world.engine.slot_owners.clear()
    chip_world.verifications.verify(OFFICER, b"face:1", None, chip=chip(1, pki))
    assert chip_world.engine.slot_owners == [OFFICER.key_id] * 2
    engine.slot_owners.clear()
    world.enrolment.enrol(world.document("P1"), b"face:2", PhotoSource.PASSPORT, OFFICER)
    assert engine.slot_owners == [OFFICER.key_id]
    engine.slot_owners.clear()
    world.watchlist.add(MANAGER, b"face:3", "wanted", "r1")
    assert engine.slot_owners == [MANAGER.key_id]
    session = paired(world)
    engine.slot_owners.clear()
    world.services.kiosks.check_frame(session, b"face:4", 1.0)
    assert engine.slot_owners == [session.device.id]


def test_a_gates_document_photo_is_decoded_as_a_document_photo_an_officers_as_a_reference() -> None:
    """A gate's 1:1 reference is a data-page scan: 4 MP at most (a 16 MP reference photo cost
    1.15 s of CPU a request; benchmarks/RESULTS.md)."""
    world = World()
    world.engine.kinds.clear()
    world.verifications.verify(GATE, b"face:1", b"face:1")
    world.verifications.verify(OFFICER, b"face:1", b"face:1")
    assert world.engine.kinds == [
        ImageKind.DOCUMENT_PHOTO,
        ImageKind.GATE_FRAME,
        ImageKind.REFERENCE_PHOTO,
        ImageKind.GATE_FRAME,
    ]


class _SlowEngine(FakeAnalyser):
    """The fake analyser behind real decode slots: each image holds its slot until its
    name (the photo's bytes) is released, and the order slots are granted is recorded."""

    def __init__(self, slots: int) -> None:
        super().__init__()
        self.slots = DecodeSlots(slots)
        self.granted: list[tuple[str | None, bytes]] = []
        self.release: dict[bytes, threading.Event] = {}
        self._lock = threading.Lock()

    def analyse(self, data, formats=frozenset(), kind=ImageKind.GATE_FRAME):  # type: ignore[no-untyped-def]
        with self.slots:
            with self._lock:
                self.granted.append((current_slot_owner(), data))
                event = self.release.setdefault(data, threading.Event())
            event.wait(10)
            return super().analyse(b"face:" + data.split(b":")[1], formats, kind)


def test_one_gate_keys_large_verifications_do_not_queue_another_keys_behind_them() -> None:
    """Probe s9 D1: gateXX's 1:1 requests (16 MP photos, 1.15 s each) on six connections made
    gateYY's ordinary 1:1 wait 9.4 s. With two slots held by the flood and three more of its
    requests queued first, the other key's request gets the next free slot."""
    world = World()
    engine = _SlowEngine(2)
    world.verifications._engine = engine
    results: dict[str, Decision] = {}

    def verify(caller_name: str, photo: bytes) -> None:
        caller = GATE if caller_name.startswith("flood") else OTHER_GATE
        results[caller_name] = world.verifications.verify(caller, photo, photo).decision

    def start(name: str, photo: bytes) -> threading.Thread:
        thread = threading.Thread(target=verify, args=(name, photo), daemon=True)
        thread.start()
        return thread

    def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, f"{what}: {engine.granted}"
            time.sleep(0.01)

    def queued() -> int:
        with engine.slots._changed:
            return len(engine.slots._queue)

    threads = [start(f"flood{i}", f"flood{i}:1".encode()) for i in range(2)]
    wait_until(lambda: len(engine.granted) == 2, "the flood holds both slots")
    threads += [start(f"flood{i}", f"flood{i}:1".encode()) for i in range(2, 5)]
    wait_until(lambda: queued() == 3, "three more of the flood wait")
    threads.append(start("victim", b"victim:2"))
    wait_until(lambda: queued() == 4, "the other key waits behind them")
    engine.release.setdefault(b"flood0:1", threading.Event()).set()
    wait_until(lambda: len(engine.granted) == 3, "a slot is freed")
    assert engine.granted[2] == (OTHER_GATE.key_id, b"victim:2")
    for name in [b"victim:2", *(f"flood{i}:1".encode() for i in range(5))]:
        engine.release.setdefault(name, threading.Event()).set()
    for thread in threads:
        thread.join(20)
    assert results == {f"flood{i}": Decision.MATCH for i in range(5)} | {"victim": Decision.MATCH}
