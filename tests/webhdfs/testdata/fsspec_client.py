"""Drives Debian's python3-fsspec WebHDFS client against Strata's WebHDFS.

Called by tests/webhdfs with one JSON argument (host, port, https, ca,
token or cert/key, root, mode). Prints one JSON object of results for the
Go test to check against the under-storage; any failed expectation raises
(non-zero exit, traceback on stderr).
"""
import hashlib
import json
import random
import sys

from fsspec.implementations.webhdfs import WebHDFS

args = json.loads(sys.argv[1])
kw = {"use_https": args.get("https", False)}
if args.get("token"):
    kw["token"] = args["token"]
fs = WebHDFS(args["host"], args["port"], skip_instance_cache=True, **kw)
if args.get("ca"):
    fs.session.verify = args["ca"]
if args.get("cert"):
    fs.session.cert = (args["cert"], args["key"])
root = args["root"]
mode = args["mode"]
out = {}


def sha(b):
    return hashlib.sha256(b).hexdigest()


def expect(name, cond, detail=""):
    if not cond:
        raise AssertionError("%s: %s" % (name, detail))


def raises(exc, fn, *a, **k):
    try:
        fn(*a, **k)
    except exc as e:
        return str(e)
    raise AssertionError("%s did not raise %s" % (fn, exc))


if mode in ("readwrite", "readonly"):
    # ls and info.
    names = fs.ls(root)
    expect("ls", root + "/seed.bin" in names, names)
    detail = {i["name"]: i for i in fs.ls(root, detail=True)}
    seed = detail[root + "/seed.bin"]
    expect("ls detail", seed["type"] == "file" and seed["size"] == args["seed_size"], seed)
    info = fs.info(root + "/seed.bin")
    expect("info", info["size"] == args["seed_size"] and info["type"] == "file", info)
    expect("info dir", fs.info(root)["type"] == "directory")
    expect("isdir", fs.isdir(root) and fs.isfile(root + "/seed.bin") and not fs.exists(root + "/none"))
    out["missing"] = raises(FileNotFoundError, fs.info, root + "/none")
    # Whole reads and ranges (OPEN with offset and length, through the redirect).
    size = args["seed_size"]
    out["seed_sha"] = sha(fs.cat_file(root + "/seed.bin"))
    ranges = [(0, 10), (5 * 2**20 - 3, 5 * 2**20 + 7), (size - 5, size), (size // 2, size // 2 + 1)]
    got = []
    with fs.open(root + "/seed.bin", "rb", block_size=2**20) as f:
        for start, end in ranges:
            f.seek(start)
            got.append(sha(f.read(end - start)))
    out["range_shas"] = got
    out["cat_range_sha"] = sha(fs.cat_file(root + "/seed.bin", start=7, end=1000))
    out["ukey"] = fs.ukey(root + "/seed.bin")
    out["summary"] = fs.content_summary(root)

if mode == "readwrite":
    # Write: CREATE, then an APPEND per 5MiB block.
    data = random.Random(42).randbytes(12 * 2**20 + 123)
    with fs.open(root + "/up/big.bin", "wb", block_size=5 * 2**20) as f:
        f.write(data)
    expect("write", fs.cat_file(root + "/up/big.bin") == data)
    out["written_sha"] = sha(data)
    # APPEND mode.
    with fs.open(root + "/up/big.bin", "ab") as f:
        f.write(b"appended tail")
    expect("append", fs.cat_file(root + "/up/big.bin") == data + b"appended tail")
    out["appended_sha"] = sha(data + b"appended tail")
    # Small files with odd names; pipe; mkdir.
    fs.pipe_file(root + "/up/ü b.txt", b"odd name")
    expect("odd name", fs.cat_file(root + "/up/ü b.txt") == b"odd name")
    fs.mkdir(root + "/up/sub/deeper")
    expect("mkdir", fs.isdir(root + "/up/sub/deeper"))
    # mv and rm.
    fs.mv(root + "/up/ü b.txt", root + "/up/sub/moved.txt")
    expect("mv", not fs.exists(root + "/up/ü b.txt") and fs.cat_file(root + "/up/sub/moved.txt") == b"odd name")
    fs.pipe_file(root + "/up/gone.txt", b"x")
    fs.rm(root + "/up/gone.txt")
    expect("rm", not fs.exists(root + "/up/gone.txt"))
    out["nonempty"] = raises(Exception, fs.rm, root + "/up/sub")
    fs.rm(root + "/up/sub", recursive=True)
    expect("rm -r", not fs.exists(root + "/up/sub"))
    out["ls_up"] = fs.ls(root + "/up")
    out["chmod"] = raises(ValueError, fs.chmod, root + "/up/big.bin", "600")

if mode == "readonly":
    # A read-only identity: every write is refused, nothing changes.
    out["write_refused"] = raises(PermissionError, fs.pipe_file, root + "/nope.txt", b"x")
    out["mkdir_refused"] = raises(PermissionError, fs.mkdir, root + "/nope")
    out["rm_refused"] = raises(PermissionError, fs.rm, root + "/seed.bin")

if mode == "denied":
    # No credentials the server accepts.
    out["ls_refused"] = raises(PermissionError, fs.ls, root)
    out["open_refused"] = raises(PermissionError, fs.cat_file, root + "/seed.bin")

print(json.dumps(out))
