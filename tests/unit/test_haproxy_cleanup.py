"""The HAProxy that Ray leaves running is found by its config's directory and stopped."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from medai_cli.main import haproxy_dir, haproxy_env, serve_env, stop_haproxy


def fake_haproxy(bin_dir: Path, directory: Path) -> subprocess.Popen[bytes]:
    """A process named ``haproxy`` started as Ray starts it: ``haproxy -f <config>``
    (``tail -f`` under that name: it runs until killed)."""
    node_directory = directory / "c0ffee"  # Ray scopes HAProxy's files per node
    node_directory.mkdir(parents=True, exist_ok=True)
    config = node_directory / "haproxy.cfg"
    config.write_text("global\n")
    binary = bin_dir / "haproxy"
    if not binary.exists():
        binary.symlink_to("/usr/bin/tail")
    return subprocess.Popen([str(binary), "-f", str(config)], stdout=subprocess.DEVNULL)


def test_only_the_servers_own_haproxy_is_stopped(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    mine, other = fake_haproxy(tmp_path, ours), fake_haproxy(tmp_path, theirs)
    try:
        time.sleep(0.2)
        assert stop_haproxy(ours) == 1
        assert mine.wait(timeout=10) != 0
        assert other.poll() is None
        assert stop_haproxy(ours) == 0
    finally:
        other.kill()
        other.wait()


def test_the_admin_socket_fits_haproxys_limit_below_rays_node_directory() -> None:
    directory = haproxy_dir()
    try:
        socket = Path(haproxy_env(directory)["RAY_SERVE_HAPROXY_SOCKET_PATH"])
        node_id = "f" * 56  # Ray's node id, a directory between the two
        assert len(str(socket.parent / node_id / socket.name).encode()) <= 97
    finally:
        directory.rmdir()


def test_high_throughput_servers_keep_haproxys_files_in_their_own_directory(
    tmp_path: Path,
) -> None:
    env = serve_env(True, tmp_path)
    assert env.items() >= haproxy_env(tmp_path).items()
    assert all(value.startswith(str(tmp_path)) for key, value in env.items() if "HAPROXY" in key)
    assert not any("HAPROXY" in key for key in serve_env(False, tmp_path))


def test_every_haproxy_file_ray_would_put_in_its_shared_default_is_ours() -> None:
    """Ray's defaults put each file under ``/tmp/haproxy-serve``, shared by every server
    on the host (a metrics socket was left there before this was checked)."""
    from ray.serve._private import constants

    shared = {
        name
        for name, value in vars(constants).items()
        if isinstance(value, str) and value.startswith("/tmp/haproxy-serve")
    }
    assert shared and shared <= haproxy_env(Path("/tmp/mh-x")).keys()
