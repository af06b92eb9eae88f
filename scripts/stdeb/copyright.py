"""Write debian/copyright of python3-builder (called by scripts/build-stdeb.sh).

    python3 copyright.py PACKAGE_SOURCE_DIR

builder's own stanza, then one per vendored distribution found in vendor/, with the
license named by its metadata and the full text of its LICENSE file, so the stanzas
follow the pinned versions without being edited by hand.
"""

import sys
from email.parser import Parser
from pathlib import Path

HEADER = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: builder
Comment: vendor/ (installed as /usr/lib/python3-builder/vendor) holds pydantic 2 and the
 modules it needs, unpacked from their wheels, for Debian 12 whose pydantic is 1.10.

Files: *
Copyright: builder maintainers
License: GPL-2+
 On Debian systems the full text of the GNU General Public License version 2
 is in /usr/share/common-licenses/GPL-2.
"""

# Where the LICENSE file has no plain "Copyright ..." line of its own holder.
OWNERS = {"typing_extensions": "Python Software Foundation and the earlier holders named in the license text"}


def text(body: str) -> str:
    return "\n".join(" " + line if line.strip() else " ." for line in body.strip("\n").splitlines())


def main(src: Path) -> None:
    parts = [HEADER]
    for info in sorted((src / "vendor").glob("*.dist-info")):
        meta = Parser().parsestr((info / "METADATA").read_text())
        licenses = sorted(info.glob("licenses/*")) or sorted(info.glob("LICENSE*"))
        body = "".join(p.read_text() for p in licenses)
        owner = next((ln.strip() for ln in body.splitlines() if ln.strip().startswith("Copyright")), "its authors")
        owner = OWNERS.get(meta["Name"]) or owner.removeprefix("Copyright").strip().removeprefix("(c)").strip()
        tops = sorted(line.split(",")[0].split("/")[0] for line in (info / "RECORD").read_text().splitlines())
        files = " ".join(f"vendor/{t}" if t.endswith(".py") else f"vendor/{t}/*" for t in dict.fromkeys(tops))
        name = meta.get("License-Expression") or meta.get("License") or "see-text"
        parts.append(f"Files: {files}\nCopyright: {owner}\nLicense: {name}\n{text(body)}\n")
    (src / "debian" / "copyright").write_text("\n".join(parts))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
