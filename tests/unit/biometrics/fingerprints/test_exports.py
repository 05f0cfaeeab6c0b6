"""The fingerprint package's public names are deliberate: every export exists, none is private."""

from __future__ import annotations

import entryexit.biometrics.fingerprints as fingerprints


def test_exported_names_are_public_and_resolve() -> None:
    for name in fingerprints.__all__:
        assert not name.startswith("_")
        assert hasattr(fingerprints, name), name
    assert sorted(fingerprints.__all__) == sorted(set(fingerprints.__all__))


def test_the_engine_adapter_satisfies_the_port() -> None:
    port = {n for n in dir(fingerprints.FingerprintEngine) if not n.startswith("_")}
    assert port == {
        "key",
        "assess",
        "extract",
        "read",
        "from_iso_minutiae",
        "prepare",
        "compare",
        "paired_minutiae",
    }
    assert port <= set(dir(fingerprints.MinutiaeFingerprintEngine))
