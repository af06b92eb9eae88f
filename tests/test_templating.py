"""The template layer's own defence: a value that got past validation (forced here with
model_copy) is quoted for its file's syntax or refused; it never becomes syntax."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest

from builder.errors import BuilderError
from builder.image.config import image_spec, render_files
from builder.packaging import build_packages, deb, rpm
from builder.packaging.model import Package, package_model
from builder.profile.load import load_profile
from builder.profile.model import Profile
from builder.render import _environment, render
from builder.templating import environment
from tests.conftest import FAKE_SECRETS, pbx_ha_data, write_profile
from tests.smtp_relay import USER, smtp_relay

MIRRORS = ("http://mirror.example.invalid/debian", None)


def forced(model: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """`model` with the value at `path` replaced, without validation (model_copy)."""
    head, *rest = path
    if isinstance(model, list | dict):
        items = list(model) if isinstance(model, list) else dict(model)
        items[head] = forced(items[head], tuple(rest), value) if rest else value  # type: ignore[index]
        return items
    assert isinstance(head, str)
    new = forced(getattr(model, head), tuple(rest), value) if rest else value
    return model.model_copy(update={head: new})


@pytest.fixture(scope="module")
def pbx() -> Profile:
    return load_profile("pbx-ha")


def one(text: str, name: str = "t.j2", **values: Any) -> str:
    env = environment(jinja2.DictLoader({name: text}))
    return env.get_template(name).render(**values)


# --- finalize: no control character in an interpolated value, unless it is a block ---


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b", "a\x1bb", "a\tb", "a\u2028b", "a\x85b"])
def test_finalize_refuses_control_characters_and_names_them(value: str) -> None:
    with pytest.raises(BuilderError) as e:
        one("x {{ v }} y\n", name="etc/some.conf.j2", v=value)
    assert "etc/some.conf.j2" in e.value.message
    assert repr(value) in e.value.message


def test_a_long_value_is_shown_truncated() -> None:
    with pytest.raises(BuilderError) as e:
        one("{{ v }}", v="x" * 200 + "\n")
    assert "x" * 50 in e.value.message and "x" * 70 not in e.value.message


def test_a_secret_is_never_shown() -> None:
    bad = dataclasses.replace(FAKE_SECRETS, smtp_password="FAKE-pass\nhost evil")
    with pytest.raises(BuilderError) as e:
        one("password {{ s.smtp_password }}", s=bad)
    assert "FAKE-pass" not in e.value.message and "secret" in e.value.message


def test_blocks_may_hold_newlines_only() -> None:
    assert one("{{ v | block }}", v="a\nb") == "a\nb"
    with pytest.raises(BuilderError):
        one("{{ v | block }}", v="a\r\nb")
    macro = "{% macro m() %}\nline 1\nline 2\n{% endmacro %}"
    with pytest.raises(BuilderError):
        one(macro + "{{ m() }}")
    assert one(macro + "{{ m() | indent(2) | block }}") == "\n  line 1\n  line 2\n"


def test_undefined_is_still_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError):
        one("{{ nope }}")


# --- the filters ---


def test_sh_quotes_words_and_lists() -> None:
    assert one("{{ v | sh }}", v="/replica") == "/replica"  # plain values stay as they are
    assert one("{{ v | sh }}", v="/srv/$(reboot)") == "'/srv/$(reboot)'"
    assert one("{{ v | sh }}", v=["a.service", "b c"]) == "a.service 'b c'"
    out = subprocess.run(["sh", "-c", "printf '%s|' " + one("{{ v | sh }}", v=["it's", "$(x)", "a b"])],
                         capture_output=True, text=True, check=True).stdout
    assert out == "it's|$(x)|a b|"
    with pytest.raises(BuilderError, match="option"):
        one("{{ v | sh }}", v=["a", "--now"])


@pytest.mark.parametrize("value", ["a b", "a;b", "a#b", "a$b", "a%b", "a,b", 'a"b', "a=b", "a*b", "", "a{b", "-x"])
def test_word_refuses_anything_but_a_bare_token(value: str) -> None:
    with pytest.raises(BuilderError):
        one("{{ v | word }}", v=value)


def test_word_passes_names_paths_addresses() -> None:
    for value in ("kava1", "/dev/disk/by-id/ata-X_1:0", "ops+alerts@example.org", "http://mirror.example.invalid/debian",
                  "1.0~rc1", "fe80::1"):
        assert one("{{ v | word }}", v=value) == value


@pytest.mark.parametrize("value", ["/srv/a::b", "/srv/a:b", "/srv/a b", "/srv/$(reboot)", "/srv/*", "a;b"])
def test_hares_refuses_separators_and_shell_characters(value: str) -> None:
    with pytest.raises(BuilderError, match="haresources"):
        one("{{ v | hares }}", name="base/etc/ha.d/haresources.j2", v=value)


def test_drbd_msmtp_ini_sql_quoting() -> None:
    assert one("{{ v | drbd }}", v='a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert one("{{ v | msmtp }}", v='p a"ss #w\\d') == '"p a"ss #w\\d"'  # msmtp has no escapes
    assert one("{{ v | ini }}", v="100% %n") == "100%% %%n"
    with pytest.raises(BuilderError):
        one("{{ v | ini }}", v="a\\")
    assert one("{{ v | sql }}", v="it's") == "'it''s'"
    with pytest.raises(BuilderError):
        one("{{ v | sql }}", v="a\\'")


def test_dependency_grammars() -> None:
    for good in ("heartbeat", "msmtp-mta | mail-transport-agent", "foo (>= 1.2~rc1)", "libc6:amd64"):
        assert one("{{ v | debdep }}", v=good) == good
    for bad in ("foo, bar", "foo [amd64]", "Foo", "foo (>= 1) bar"):
        with pytest.raises(BuilderError):
            one("{{ v | debdep }}", v=bad)
    for good in ("mariadb-server", "perl(Foo::Bar)", "/usr/bin/sh", "foo >= 1.2"):
        assert one("{{ v | rpmdep }}", v=good) == good
    for bad in ("%(touch /tmp/x)", "foo, bar", "foo bar", "%{name}"):
        with pytest.raises(BuilderError):
            one("{{ v | rpmdep }}", v=bad)


def test_rpm_spec_values_have_percent_doubled_once() -> None:
    env = environment(jinja2.DictLoader({
        "x.spec.j2": '{% import "m.j2" as m %}Summary: {{ v }}\n{{ m.line(v) | block }}\n',
        "m.j2": "{% macro line(v) %}echo {{ v | sh }}\ndone{% endmacro %}",
    }))
    out = env.get_template("x.spec.j2").render(v="50%(x)")
    assert out == "Summary: 50%%(x)\necho '50%%(x)'\ndone\n"  # the macro's value is doubled once, not twice
    with pytest.raises(BuilderError, match="section"):
        env.get_template("x.spec.j2").render(v="%pre")
    assert one("{{ v | block }}", name="y.spec.j2", v="a\n %x") == "a\n %%x"
    with pytest.raises(BuilderError, match="section"):
        one("{{ v | block }}", name="y.spec.j2", v="a\n%%pre")


# --- hostile values forced into the pbx-ha profile: render refuses them ---

RENDER_SITES = [
    (("drbd", "mount"), "/srv/$(reboot)"),
    (("drbd", "mount"), "/srv/a b"),
    (("drbd", "mount"), "/srv/a::b"),
    (("alerts", "smtp", "user"), "ops\nhost evil.example"),
    (("alerts", "smtp", "tls_trust_file"), "/etc/ca.crt\nhost evil.example"),
    (("alerts", "smtp", "host"), "relay evil.example"),
    (("alerts", "sender"), "pbx@example.invalid\nauth off"),
    (("alerts", "recipients"), ["ops@example.invalid, evil@example.invalid"]),
    (("time_servers",), ["pool.ntp.org\nserver evil.example"]),
    (("time_servers",), ["pool.ntp.org iburst maxdelay 9"]),
    (("services", 0, "unit"), "mariadb.service; reboot"),
    (("services", 0, "unit"), "maria%n.service"),
    (("cluster", "name"), "pbx\nevil"),
    (("nodes", 0, "name"), "kava1 {"),
    (("heartbeat", "ping"), ["192.168.0.1\nnode evil"]),
    (("nodes", 0, "public", "mac"), "52:54:00:0a:00:01\nName=evil"),
]


@pytest.mark.parametrize(("path", "value"), RENDER_SITES,
                         ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v in RENDER_SITES])
def test_render_refuses_a_hostile_value(pbx: Profile, path: tuple[str | int, ...], value: Any) -> None:
    with pytest.raises(BuilderError) as e:
        render(forced(pbx, path, value), FAKE_SECRETS)
    assert "template " in e.value.message


def test_a_hostile_secret_with_a_newline_is_refused_unshown(pbx: Profile) -> None:
    profile = forced(pbx, ("alerts", "smtp", "user"), "ops@example.invalid")
    secrets = dataclasses.replace(FAKE_SECRETS, smtp_password="FAKE-x\nauth off")
    with pytest.raises(BuilderError) as e:
        render(profile, secrets)
    assert "FAKE-x" not in e.value.message


def test_the_resource_script_quotes_the_mount(tmp_path: Path, pbx: Profile) -> None:
    # haresources refuses this mount; the root-run resource script must quote it on its own.
    mount = "/srv/it's $(touch X)"
    profile = forced(pbx, ("drbd", "mount"), mount)
    svc = profile.services[0]
    base = {"p": profile, "d": profile.drbd}
    text = _environment().get_template("base/etc/ha.d/resource.d/service.j2").render(
        base, svc=svc, setup="/usr/lib/cluster/setup/mariadb")
    assert """marker='/srv/it'"'"'s $(touch X)/.cluster/setup-mariadb.done'""" in text
    script = tmp_path / "mariadb"
    script.write_text(text)
    # SC2016 ("expressions don't expand in single quotes") is the point here.
    proc = subprocess.run(["shellcheck", "--shell=sh", "--exclude=SC2016", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_a_backing_disk_with_drbd_syntax_stays_one_string(tmp_path: Path, pbx: Profile) -> None:
    disk = '/dev/disk/by-id/x; } on evil { disk "/dev/sda'
    backing = pbx.drbd.backing.model_copy(update={"kind": "disk", "disks": {"kava1": disk, "kava2": "/dev/sdb"}})
    tree = render(forced(pbx, ("drbd", "backing"), backing), FAKE_SECRETS)
    root = tmp_path / "root"
    tree.write_atomically(root)
    conf = tmp_path / "drbd.conf"
    conf.write_text(f'include "{root}/etc/drbd.d/global_common.conf";\ninclude "{root}/etc/drbd.d/*.res";\n')
    adm = f"/usr/lib/drbd/drbdadm-84 -c {conf}"
    script = f"hostname kava1 && ip link set lo up && ip addr add 10.1.1.1/24 dev lo && {adm} sh-ll-dev r0"
    proc = subprocess.run(["unshare", "--uts", "--net", "sh", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == disk


def test_a_backing_disk_with_a_newline_is_refused(pbx: Profile) -> None:
    disks = {"kava1": "/dev/sdb\n}", "kava2": "/dev/sdb"}
    backing = pbx.drbd.backing.model_copy(update={"kind": "disk", "disks": disks})
    with pytest.raises(BuilderError):
        render(forced(pbx, ("drbd", "backing"), backing), FAKE_SECRETS)


def test_the_database_password_is_one_sql_string(pbx: Profile) -> None:
    secrets = dataclasses.replace(FAKE_SECRETS, db_password="FAKE-it's")
    setup = render(pbx, secrets).get("/usr/lib/cluster/setup/mariadb").data.decode()
    assert "IDENTIFIED BY 'FAKE-it''s';" in setup


# --- packages: the spec and the Debian control files ---


def _pkg(profile: Profile) -> Package:
    return package_model(profile, render(profile, FAKE_SECRETS), "1")


@pytest.mark.parametrize("name", ["%(touch {marker})", "foo\n%pre\ntouch {marker}", "foo, %{{name}}"])
def test_a_hostile_rpm_package_name_is_refused_and_never_runs(tmp_path: Path, pbx: Profile, name: str) -> None:
    marker = tmp_path / "marker"
    profile = forced(pbx, ("services", 0, "packages", "rpm"), [name.format(marker=marker)])
    out = tmp_path / "out"
    with pytest.raises(BuilderError):
        build_packages(profile, render(profile, FAKE_SECRETS), ["rpm"], out)
    assert not marker.exists()
    assert not out.exists() or not list(out.glob("*.rpm"))


def test_percent_in_a_spec_value_stays_literal_for_rpm(tmp_path: Path, pbx: Profile) -> None:
    marker = tmp_path / "marker"
    summary = f"50% done %(touch {marker}) %{{name}}"
    pkg = dataclasses.replace(_pkg(pbx), summary=summary, maintainer=f"ops %(touch {marker}) <ops@example.invalid>")
    spec = tmp_path / "x.spec"
    spec.write_text(rpm.spec_text(pkg, tmp_path / "tree dir"))
    proc = subprocess.run(["rpmspec", "-q", "--srpm", "--qf", "%{SUMMARY}\n%{PACKAGER}\n", str(spec)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [summary.capitalize(), f"ops %(touch {marker}) <ops@example.invalid>"]
    assert not marker.exists()
    # the scriptlets are the template's: nothing was added by a value
    parsed = subprocess.run(["rpmspec", "-P", str(spec)], capture_output=True, text=True, check=True).stdout
    assert [ln for ln in parsed.splitlines() if re.match(r"%(pre|post|preun|postun)\b", ln)] == \
        ["%post", "%preun", "%postun"]
    assert not marker.exists()


def test_a_description_line_cannot_open_a_spec_section(pbx: Profile) -> None:
    pkg = dataclasses.replace(_pkg(pbx), description="Cluster config.\n%pre\ntouch /tmp/x")
    with pytest.raises(BuilderError, match="section"):
        rpm.spec_text(pkg, Path("/TREE"))


@pytest.mark.parametrize("name", ["foo, evil", "foo\nPre-Depends: evil", "foo [amd64]"])
def test_a_hostile_deb_package_name_is_refused(pbx: Profile, name: str) -> None:
    pkg = _pkg(forced(pbx, ("services", 0, "packages", "deb"), [name]))
    with pytest.raises(BuilderError):
        deb.control_files(pkg, deb.deb_files(pkg))


# --- the image's mkosi configuration ---


@pytest.mark.parametrize(("path", "value"), [
    (("packages",), ["vim\n[Content]\nPackages=evil"]),
    (("packages",), ["vim evil"]),
    (("packages",), ["vim,evil"]),
    (("cluster", "mirror"), "http://deb.example/debian\nSuites: evil"),
    (("cluster", "mirror"), "http://deb.example/debian http://evil.example/debian"),
])
def test_image_config_refuses_a_hostile_value(pbx: Profile, path: tuple[str | int, ...], value: Any) -> None:
    profile = forced(pbx, path, value)
    mirrors = (profile.cluster.mirror, None) if path[-1] == "mirror" else MIRRORS
    with pytest.raises(BuilderError):
        render_files(image_spec(profile, mirrors=mirrors), tools_tree=True)


# --- msmtp reads the quoted values exactly (the real msmtp) ---

HOSTILE_PASSWORD = ' FAKE pa"ss #w\\d "'


def _msmtprc(tmp_path: Path, port: int, cert: Path, password: str) -> Path:
    data = pbx_ha_data()
    data["alerts"]["smtp"] = {"host": "localhost", "port": port, "starttls": True, "user": USER}
    profile = load_profile(str(write_profile(tmp_path, data)))
    # A CA path with a space, a quote and '#', forced past validation.
    trust = tmp_path / 'my certs' / 'ca "#1".pem'
    trust.parent.mkdir()
    shutil.copyfile(cert, trust)
    profile = forced(profile, ("alerts", "smtp", "tls_trust_file"), str(trust))
    tree = render(profile, dataclasses.replace(FAKE_SECRETS, smtp_password=password))
    aliases = tmp_path / "aliases"
    aliases.write_bytes(tree.get("/etc/cluster/aliases").data)
    conf = tmp_path / "msmtprc"
    conf.write_text(tree.get("/etc/msmtprc").data.decode().replace("/etc/cluster/aliases", str(aliases)))
    conf.chmod(0o600)
    return conf


def test_msmtp_reads_quoted_values_whole(tmp_path: Path) -> None:
    with smtp_relay(tmp_path, HOSTILE_PASSWORD) as (sink, port, cert):
        conf = _msmtprc(tmp_path, port, cert, HOSTILE_PASSWORD)
        shown = subprocess.run(["msmtp", "-C", str(conf), "--pretend", "-a", "cluster"],
                               capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0, shown.stderr
        values = dict(line.split(" = ", 1) for line in shown.stdout.splitlines() if " = " in line)
        assert values["tls_trust_file"] == str(tmp_path / 'my certs' / 'ca "#1".pem')
        assert values["user"] == USER
        # The relay accepts only this exact password: the mail getting through proves msmtp read it whole.
        mail = "To: root\nSubject: quoting\n\nbody\n"
        sent = subprocess.run(["msmtp", "-C", str(conf), "-t"], input=mail, capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0, sent.stderr
        assert sink.subjects() == ["quoting"]
