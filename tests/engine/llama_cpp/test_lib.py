from pathlib import Path

from hearth.engine.llama_cpp.lib import has_amx


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\n")
    return path


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    sapphire = "fpu sse avx2 avx512f avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8"
    assert has_amx(_cpuinfo(tmp_path, sapphire))
    # Words that only contain the flag's name do not count.
    assert not has_amx(_cpuinfo(tmp_path, "fpu sse avx2 avx512f amx_int8x no_amx_int8"))
    assert not has_amx(tmp_path / "missing")  # no /proc: no AMX assumed
