"""Install LightFM 1.17, the only maintained WARP implementation, into the running Python.

LightFM ships only a source distribution, and its setup.py sets `__builtins__.__LIGHTFM_SETUP__`, which fails under
pip's PEP 517 hooks (there `__builtins__` is a dict: "'dict' object has no attribute '__LIGHTFM_SETUP__'"), with or
without build isolation. Run as a script, setup.py works: this downloads the pinned sdist from PyPI, checks its
SHA-256, builds the wheel with `setup.py bdist_wheel` and installs it without dependencies (numpy, scipy and
scikit-learn come with crossmodal). Needs a C compiler and the Python headers (gcc, python3-dev). Idempotent.
"""
import hashlib, importlib.metadata, re, subprocess, sys, tarfile, tempfile, urllib.request
from pathlib import Path

VERSION = '1.17'
SHA256 = '2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8'

def installed() -> bool:
    try: return importlib.metadata.version('lightfm') == VERSION
    except importlib.metadata.PackageNotFoundError: return False

def sdist_url() -> str:
    "The sdist's URL from PyPI's simple index (PEP 503), which the machine's pip reaches too."
    with urllib.request.urlopen('https://pypi.org/simple/lightfm/', timeout=60) as r: page = r.read().decode()
    found = re.search(rf'href="([^"#]*/lightfm-{re.escape(VERSION)}\.tar\.gz)', page)
    if not found: sys.exit(f"PyPI's simple index lists no lightfm-{VERSION}.tar.gz")
    return found.group(1)

def main():
    if installed(): return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); archive = tmp / f'lightfm-{VERSION}.tar.gz'
        with urllib.request.urlopen(sdist_url(), timeout=120) as r: archive.write_bytes(r.read())
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != SHA256: sys.exit(f"lightfm-{VERSION}.tar.gz has SHA-256 {digest}, expected {SHA256}; not installing it")
        with tarfile.open(archive) as t: t.extractall(tmp, filter='data')
        source = tmp / f'lightfm-{VERSION}'
        subprocess.run([sys.executable, 'setup.py', '-q', 'bdist_wheel', '-d', str(tmp / 'dist')], cwd=source, check=True,
                       stdout=subprocess.DEVNULL)
        wheel = next((tmp / 'dist').glob('lightfm-*.whl'))
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', str(wheel)], check=True)
    if not installed(): sys.exit(f"lightfm {VERSION} did not install")
    print(f"installed lightfm {VERSION} (built from its sdist)")

if __name__ == '__main__': main()
