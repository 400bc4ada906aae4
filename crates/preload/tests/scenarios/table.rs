//! The scenario table, by route (the numbering of docs/security.md's
//! coverage table).

use super::{scenarios, Scenario, BASE};
use std::any::Any;
use std::path::Path;
use std::process::Command;

const SECRET: &str = r#"[{"name": "secret", "kind": "file", "path": ["{d}/secret", "{d}/secret/**"], "action": "deny"}]"#;
const SECRET_WRITE: &str = r#"[{"name": "secret-write", "kind": "file", "access": ["write"], "path": ["{d}/secret", "{d}/secret/**"], "action": "deny"}]"#;
const SECRET_READ: &str = r#"[{"name": "secret-read", "kind": "file", "access": ["read"], "path": ["{d}/secret", "{d}/secret/**"], "action": "deny"}]"#;
const INNER_WRITE: &str = r#"[{"name": "inner-write", "kind": "file", "access": ["write"], "path": ["{d}/secret/inner/**"], "action": "deny"}]"#;
const NO_ID: &str =
    r#"[{"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"}]"#;
const NO_SHELL: &str = r#"[{"name": "no-shell", "kind": "exec", "path": ["/bin/sh", "/usr/bin/dash"], "action": "deny"}]"#;
const NO_PEER: &str = r#"[{"name": "no-peer", "kind": "network", "direction": "outbound", "address": ["127.0.0.2/32"], "action": "deny"}]"#;
const NO_LOOPBACK: &str = r#"[{"name": "no-loopback", "kind": "network", "direction": "outbound", "address": ["127.0.0.1/32", "::1/128"], "action": "deny"}]"#;
const NO_SOCKET: &str = r#"[{"name": "api-socket", "kind": "network", "direction": "outbound", "unix": ["{d}/secret/*.sock"], "action": "deny"}]"#;
const NO_NS: &str =
    r#"[{"name": "no-ns", "kind": "syscall", "call": ["unshare"], "action": "deny"}]"#;
const NO_PTRACE: &str =
    r#"[{"name": "no-ptrace", "kind": "syscall", "call": ["ptrace"], "action": "deny"}]"#;
const NO_MOUNT: &str =
    r#"[{"name": "no-mount", "kind": "syscall", "call": ["mount"], "action": "deny"}]"#;
const NO_SHADOW: &str = r#"[{"name": "shadow", "kind": "file", "access": ["read"], "path": ["/etc/shadow"], "action": "deny"}]"#;
const NO_HOST: &str =
    r#"[{"name": "no-localhost", "kind": "network", "host": ["localhost"], "action": "deny"}]"#;
const NO_TMP: &str = r#"[{"name": "no-tmp", "kind": "file", "access": ["write"], "path": ["/tmp/**"], "action": "deny"}]"#;
const NO_SHM: &str = r#"[{"name": "no-shm", "kind": "file", "path": ["/dev/shm/ldguard-secret-*"], "action": "deny"}]"#;
const NO_LOW_PORTS: &str = r#"[{"name": "no-low-ports", "kind": "network", "direction": "listen", "port": ["1-1023"], "action": "deny"}]"#;
const NO_SYS_MM: &str = r#"[{"name": "no-sys-mm", "kind": "file", "access": ["read"], "path": ["/sys/kernel/mm/**"], "action": "deny"}]"#;
const NO_CMDLINE: &str = r#"[{"name": "no-cmdline", "kind": "file", "access": ["read"], "path": ["/proc/cmdline"], "action": "deny"}]"#;
/// One file by its exact path (no glob to catch its `(deleted)` name).
const SECRET_FILE_READ: &str = r#"[{"name": "secret-file-read", "kind": "file", "access": ["read"], "path": ["{d}/secret/f"], "action": "deny"}]"#;
const NOTHING: &str = "[]";
const NO_LOOP_DEVICES: &str =
    r#"[{"name": "no-loop", "kind": "file", "path": ["/dev/loop*"], "action": "deny"}]"#;
/// A wildcard before the protected part: the rule's literal prefix
/// (`{d}/`) lies above every directory it protects.
const WILD_INNER_READ: &str = r#"[{"name": "wild-inner", "kind": "file", "access": ["read"], "path": ["{d}/*/inner/**"], "action": "deny"}]"#;
/// A floating rule whose match spans a directory and what is in it.
const FLOATING_INNER_READ: &str = r#"[{"name": "floating-inner", "kind": "file", "access": ["read"], "path": ["**/inner/f"], "action": "deny"}]"#;

const PERM: &str = "error: Permission denied";

/// `renameat2(A, B, RENAME_EXCHANGE)`, then prints what is now at B.
const RENAME_EXCHANGE: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nif libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nprint(open(sys.argv[2]).read(), end='')\n";
/// `openat2(ROOT, PATH, RESOLVE_IN_ROOT)` through `syscall()` (ROOT an
/// `O_PATH` descriptor of a directory), then prints what it read.
const OPENAT2_IN_ROOT: &str = "import ctypes, os, struct, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nroot = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)\nhow = ctypes.create_string_buffer(struct.pack('QQQ', os.O_RDONLY, 0, 0x10), 24)\nfd = libc.syscall(ctypes.c_long(437), ctypes.c_long(root), sys.argv[2].encode(), how, ctypes.c_long(24))\nif fd < 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nprint(os.read(fd, 100).decode(), end='')\n";
/// As [`LINK_PROC_FD`], through `syscall(SYS_linkat)`.
const SYSCALL_LINK_PROC_FD: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nfd = os.open(sys.argv[1], os.O_PATH)\nl = ctypes.c_long\nif libc.syscall(l(265), l(-100), b'/proc/self/fd/%d' % fd, l(-100), sys.argv[2].encode(), l(0x400)) != 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nprint(open(sys.argv[2]).read(), end='')\n";
/// `syscall(SYS_rename, A, B)`, then writes C.
const SYSCALL_RENAME_THEN_WRITE: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nif libc.syscall(82, sys.argv[1].encode(), sys.argv[2].encode()) != 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nopen(sys.argv[3], 'w').write('changed')\nprint('written')\n";
/// An `O_PATH` descriptor of A (it reads nothing), `linkat` of
/// `/proc/self/fd/N` with `AT_SYMLINK_FOLLOW` to B, then prints B.
const LINK_PROC_FD: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nfd = os.open(sys.argv[1], os.O_PATH)\nif libc.linkat(-100, b'/proc/self/fd/%d' % fd, -100, sys.argv[2].encode(), 0x400) != 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nprint(open(sys.argv[2]).read(), end='')\n";
const EPERM: &str = "error: Operation not permitted";
/// `link(A, B)`, then connects to the unix socket B.
const LINK_CONNECT: &str = "import os, socket, sys\ntry:\n    os.link(sys.argv[1], sys.argv[2])\n    socket.socket(socket.AF_UNIX).connect(sys.argv[2])\nexcept OSError as e:\n    print('error:', e.strerror)\n    sys.exit(1)\nprint('connected')\n";
/// `mknod(A, TYPE, MAJOR, MINOR)` (`b` block, `c` character), then reads
/// the node and prints how many bytes came.
const MKNOD_READ: &str = "import os, stat, sys\nkind = stat.S_IFBLK if sys.argv[2] == 'b' else stat.S_IFCHR\ntry:\n    os.mknod(sys.argv[1], kind | 0o600, os.makedev(int(sys.argv[3]), int(sys.argv[4])))\n    print(len(open(sys.argv[1], 'rb').read(512)))\nexcept OSError as e:\n    print('error:', e.strerror)\n    sys.exit(1)\n";
/// In a new mount namespace, `pivot_root(A, A/old)` through `syscall()`
/// (A bind-mounted on itself), then prints what the old root's path B is
/// now named: `/old` + B.
const PIVOT_ROOT_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nnew = sys.argv[1]\nos.makedirs(new + '/old', exist_ok=True)\ndef check(r):\n    if r != 0:\n        print('error:', os.strerror(ctypes.get_errno()))\n        sys.exit(1)\ncheck(libc.unshare(0x20000))\ncheck(libc.mount(b'none', b'/', None, 0x44000, None))\ncheck(libc.mount(new.encode(), new.encode(), None, 0x1000, None))\ncheck(libc.syscall(155, new.encode(), (new + '/old').encode()))\nprint(open('/old' + sys.argv[2]).read(), end='')\n";
/// In a new mount namespace, a detached copy of tree A (`open_tree` with
/// `OPEN_TREE_CLONE`) attached at B with `move_mount`, both through
/// `syscall()`; then prints B/C.
const OPEN_TREE_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nl = ctypes.c_long\ndef check(r):\n    if r < 0:\n        print('error:', os.strerror(ctypes.get_errno()))\n        sys.exit(1)\n    return r\ncheck(libc.unshare(0x20000))\nos.makedirs(sys.argv[2], exist_ok=True)\nfd = check(libc.syscall(l(428), l(-100), sys.argv[1].encode(), l(0x80001)))\ncheck(libc.syscall(l(429), l(fd), b'', l(-100), sys.argv[2].encode(), l(4)))\nprint(open(sys.argv[2] + '/' + sys.argv[3]).read(), end='')\n";
/// `move_mount` of the mount at A to B through `syscall()`, then prints B/C.
const MOVE_MOUNT_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nl = ctypes.c_long\nif libc.syscall(l(429), l(-100), sys.argv[1].encode(), l(-100), sys.argv[2].encode(), l(0)) != 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nprint(open(sys.argv[2] + '/' + sys.argv[3]).read(), end='')\n";
/// The new mount API: an overlay whose lower layers are A's `:`-separated
/// directories (`fsconfig(FSCONFIG_SET_STRING, "lowerdir+", …)` each),
/// attached at B; then prints B/C.
const FSCONFIG_OVERLAY_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\ndef check(r):\n    if r < 0:\n        print('error:', os.strerror(ctypes.get_errno()))\n        sys.exit(1)\n    return r\nfs = check(libc.fsopen(b'overlay', 0))\nfor layer in sys.argv[1].split(':'):\n    check(libc.fsconfig(fs, 1, b'lowerdir+', layer.encode(), 0))\ncheck(libc.fsconfig(fs, 6, None, None, 0))\nmnt = check(libc.fsmount(fs, 0, 0))\ncheck(libc.move_mount(mnt, b'', -100, sys.argv[2].encode(), 4))\nprint(open(sys.argv[2] + '/' + sys.argv[3]).read(), end='')\n";
/// `mount(A, B, "erofs", MS_RDONLY)`: the file system image A (a regular
/// file) mounted at B; then prints B/C.
const MOUNT_IMAGE_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nif libc.mount(sys.argv[1].encode(), sys.argv[2].encode(), b'erofs', 1, None) != 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nprint(open(sys.argv[2] + '/' + sys.argv[3]).read(), end='')\n";
/// The new mount API: a new instance of file system type A
/// (`fsopen`, `fsconfig(FSCONFIG_CMD_CREATE)`, `fsmount`), attached at B;
/// then prints how many bytes B/C holds.
const FSOPEN_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\ndef check(r):\n    if r < 0:\n        print('error:', os.strerror(ctypes.get_errno()))\n        sys.exit(1)\n    return r\nfs = check(libc.fsopen(sys.argv[1].encode(), 0))\ncheck(libc.fsconfig(fs, 6, None, None, 0))\nmnt = check(libc.fsmount(fs, 0, 0))\nos.makedirs(sys.argv[2], exist_ok=True)\ncheck(libc.move_mount(mnt, b'', -100, sys.argv[2].encode(), 4))\nprint(len(open(sys.argv[2] + '/' + sys.argv[3]).read()) > 0)\n";
/// An `O_PATH` descriptor of A (it reads nothing), `unlink(A)`, then reads
/// the file through `/proc/self/fd/N`.
const UNLINK_THEN_REOPEN: &str = "import os, sys\nfd = os.open(sys.argv[1], os.O_PATH)\nos.unlink(sys.argv[1])\ntry:\n    print(open('/proc/self/fd/%d' % fd).read(), end='')\nexcept OSError as e:\n    print('error:', e.strerror)\n    sys.exit(1)\n";
/// As [`FSCONFIG_OVERLAY_READ`], each layer given as an `O_PATH`
/// descriptor (`FSCONFIG_SET_FD`, Linux 6.13 and later).
const FSCONFIG_OVERLAY_FD_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\ndef check(r):\n    if r < 0:\n        print('error:', os.strerror(ctypes.get_errno()))\n        sys.exit(1)\n    return r\nfs = check(libc.fsopen(b'overlay', 0))\nfor layer in sys.argv[1].split(':'):\n    fd = os.open(layer, os.O_PATH | os.O_DIRECTORY)\n    check(libc.fsconfig(fs, 5, b'lowerdir+', None, fd))\ncheck(libc.fsconfig(fs, 6, None, None, 0))\nmnt = check(libc.fsmount(fs, 0, 0))\ncheck(libc.move_mount(mnt, b'', -100, sys.argv[2].encode(), 4))\nprint(open(sys.argv[2] + '/' + sys.argv[3]).read(), end='')\n";
/// `syscall(SYS_chroot, A)`, then prints the file B names under the new root.
const SYSCALL_CHROOT_READ: &str = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nif libc.syscall(161, sys.argv[1].encode()) != 0:\n    print('error:', os.strerror(ctypes.get_errno()))\n    sys.exit(1)\nprint(open(sys.argv[2]).read(), end='')\n";
/// `chroot(A)`, then prints the file B names under the new root.
const CHROOT_READ: &str = "import os, sys\ntry:\n    os.chroot(sys.argv[1])\n    print(open(sys.argv[2]).read(), end='')\nexcept OSError as e:\n    print('error:', e.strerror)\n    sys.exit(1)\n";
const PY: &str = "/usr/bin/python3.11";

/// `secret/inner/f` under the `inner-write` rule, and no `moved/` left
/// by an earlier run.
fn inner_tree(d: &Path) -> Box<dyn Any> {
    let _ = std::fs::remove_dir_all(d.join("moved"));
    std::fs::create_dir_all(d.join("secret/inner")).unwrap();
    std::fs::write(d.join("secret/inner/f"), "inner data\n").unwrap();
    Box::new(())
}

/// `secret/` is an ext4 file system on a loop device (`pub/dev` names
/// the device), as a volume on a disk is; unmounted and detached after the
/// run.
fn secret_on_a_loop_device(d: &Path) -> Box<dyn Any> {
    struct Loop {
        device: String,
        at: std::path::PathBuf,
        image: std::path::PathBuf,
    }
    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.at).status();
            let _ = Command::new("losetup").args(["-d", &self.device]).status();
            let _ = std::fs::remove_file(&self.image);
        }
    }
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let image = d.with_extension("img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
    let device = run(Command::new("losetup").args(["-f", "--show"]).arg(&image));
    let guard = Loop {
        device: device.clone(),
        at: d.join("secret"),
        image,
    };
    run(Command::new("mount").arg(&device).arg(d.join("secret")));
    std::fs::write(d.join("secret/f"), "secret data\n").unwrap();
    std::fs::write(d.join("pub/dev"), &device).unwrap();
    Box::new(guard)
}

/// `secret/img` and `pub/img`: erofs images holding `f` and `a`, and the
/// mount point `pub/x`.
fn filesystem_images(d: &Path) -> Box<dyn Any> {
    for (image, content) in [("secret/img", "f"), ("pub/img", "a")] {
        let tree = d.with_extension(format!("tree-{content}"));
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join(content), "image data\n").unwrap();
        let out = Command::new("mkfs.erofs")
            .arg("--quiet")
            .arg(d.join(image))
            .arg(&tree)
            .output()
            .unwrap();
        assert!(out.status.success(), "mkfs.erofs: {out:?}");
        std::fs::remove_dir_all(&tree).unwrap();
    }
    std::fs::create_dir_all(d.join("pub/x")).unwrap();
    Box::new(())
}

/// Layers for an overlay beside the scenario's trees: `pub/m` (holding
/// `a`) and an empty `pub/l`, and the mount point `pub/x`.
fn overlay_layers(d: &Path) -> Box<dyn Any> {
    for dir in ["pub/m", "pub/l", "pub/x"] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
    }
    std::fs::write(d.join("pub/m/a"), "public data\n").unwrap();
    Box::new(())
}

/// `pub/b`, a second public file (for an exchange between two allowed files).
fn second_public_file(d: &Path) -> Box<dyn Any> {
    std::fs::write(d.join("pub/b"), "other public data\n").unwrap();
    Box::new(())
}

/// Listening unix sockets `secret/api.sock` and `pub/api.sock`, datagram
/// sockets `secret/dgram.sock` and `pub/dgram.sock`, and the symlink
/// `link.sock` → `secret/api.sock`.
fn sockets(d: &Path) -> Box<dyn Any> {
    use std::os::unix::net::{UnixDatagram, UnixListener};
    let _ = std::fs::remove_file(d.join("link.sock"));
    std::os::unix::fs::symlink("secret/api.sock", d.join("link.sock")).unwrap();
    Box::new((
        UnixListener::bind(d.join("secret/api.sock")).unwrap(),
        UnixListener::bind(d.join("pub/api.sock")).unwrap(),
        UnixDatagram::bind(d.join("secret/dgram.sock")).unwrap(),
        UnixDatagram::bind(d.join("pub/dgram.sock")).unwrap(),
    ))
}

/// `pub/mem-link` → `/proc/self/mem`, `pub/comm-link` → `/proc/self/comm`.
fn memory_links(d: &Path) -> Box<dyn Any> {
    std::os::unix::fs::symlink("/proc/self/mem", d.join("pub/mem-link")).unwrap();
    std::os::unix::fs::symlink("/proc/self/comm", d.join("pub/comm-link")).unwrap();
    Box::new(())
}

/// `decoy/id` a directory and `decoy/echo` a non-executable file, both
/// named like programs of `/usr/bin`, earlier in `PATH` than it.
fn decoys(d: &Path) -> Box<dyn Any> {
    let _ = std::fs::remove_dir_all(d.join("decoy"));
    std::fs::create_dir_all(d.join("decoy/id")).unwrap();
    std::fs::write(d.join("decoy/echo"), "not a program\n").unwrap();
    Box::new(())
}

/// `pub/script` runs `/usr/bin/id` through `#!`, `pub/twin` `/usr/bin/echo`,
/// `pub/nested` runs `pub/script` as its interpreter, `pub/loader` runs
/// `/usr/bin/id` through the dynamic loader named on its `#!` line;
/// `pub/script-link` and `pub/twin-link` are links to `script` and `twin`.
fn scripts(d: &Path) -> Box<dyn Any> {
    use std::os::unix::fs::PermissionsExt;
    for (name, text) in [
        ("script", "#!/usr/bin/id\n".to_string()),
        ("twin", "#! /usr/bin/echo twin\n".to_string()),
        ("nested", format!("#!{}/pub/script\n", d.display())),
        (
            "loader",
            "#!/lib64/ld-linux-x86-64.so.2 /usr/bin/id\n".to_string(),
        ),
        (
            "loader_twin",
            "#!/lib64/ld-linux-x86-64.so.2 /usr/bin/true\n".to_string(),
        ),
    ] {
        let p = d.join("pub").join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Links to a script beside them, in the same directory.
    for (link, to) in [("script-link", "script"), ("twin-link", "twin")] {
        let _ = std::fs::remove_file(d.join("pub").join(link));
        std::os::unix::fs::symlink(to, d.join("pub").join(link)).unwrap();
    }
    Box::new(())
}

const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";
const CAT_SECRET: &str = r#"[{"name": "cat-secret", "kind": "file", "program": ["/usr/bin/cat"], "path": ["{d}/secret/**"], "action": "deny"}]"#;

/// A Python one-liner: `ctypes.CDLL(None)`'s NAME called with ARGS (the
/// path in `sys.argv[1]`), printing `ok` or the errno text like the probe.
macro_rules! py_ctypes {
    ($call:literal) => {
        concat!(
            "import ctypes, os, sys\n",
            "libc = ctypes.CDLL(None, use_errno=True)\n",
            "path = sys.argv[1].encode()\n",
            "r = ",
            $call,
            "\n",
            "print('ok' if r >= 0 else 'error: ' + os.strerror(ctypes.get_errno()))\n",
            "sys.exit(r < 0)\n"
        )
    };
}

scenarios! {
    // 1. syscall(): every number reaching a checked operation, read as the
    // kernel reads it (a 32-bit int).
    syscall_openat => Scenario { attack: &["{routes}", "sys", "openat", "{d}/secret/f"],
        twin: &["{routes}", "sys", "openat", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["openat"], target: "{d}/secret/f", ..BASE };
    syscall_open => Scenario { attack: &["{routes}", "sys", "open", "{d}/secret/f"],
        twin: &["{routes}", "sys", "open", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["open"], target: "{d}/secret/f", ..BASE };
    syscall_openat2 => Scenario { attack: &["{routes}", "sys", "openat2", "{d}/secret/f"],
        twin: &["{routes}", "sys", "openat2", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["openat2"], target: "{d}/secret/f", ..BASE };
    syscall_openat2_in_root => Scenario {
        attack: &["python3", "-c", OPENAT2_IN_ROOT, "{d}/secret", "/f"],
        twin: &["python3", "-c", OPENAT2_IN_ROOT, "{d}/pub", "/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["openat2"], target: "{d}/secret/f", program: PY, ..BASE };
    syscall_linkat_through_a_descriptor_link => Scenario {
        attack: &["python3", "-c", SYSCALL_LINK_PROC_FD, "{d}/secret/f", "{d}/pub/l"],
        twin: &["python3", "-c", SYSCALL_LINK_PROC_FD, "{d}/pub/a", "{d}/pub/l"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["linkat"],
        target: "/proc/self/fd/3", program: PY, ..BASE };
    syscall_creat => Scenario { attack: &["{routes}", "sys", "creat", "{d}/secret/new"],
        twin: &["{routes}", "sys", "creat", "{d}/pub/new"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["creat"], target: "{d}/secret/new", ..BASE };
    syscall_unlink => Scenario { attack: &["{routes}", "sys", "unlink", "{d}/secret/f"],
        twin: &["{routes}", "sys", "unlink", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["unlink"], target: "{d}/secret/f", ..BASE };
    syscall_execve => Scenario { attack: &["{routes}", "sys", "execve", "/usr/bin/id"],
        twin: &["{routes}", "sys", "execve", "/usr/bin/true"], rules: NO_ID, text: PERM,
        rule: "no-id", calls: &["execve"], target: "/usr/bin/id", ..BASE };
    syscall_connect => Scenario { attack: &["{routes}", "sys", "connect", "127.0.0.2"],
        twin: &["{routes}", "sys", "connect", "127.0.0.3"], rules: NO_PEER, text: EPERM,
        rule: "no-peer", calls: &["connect"], target: "127.0.0.2:", ..BASE };
    syscall_rename_ancestor => Scenario {
        attack: &["python3", "-c", SYSCALL_RENAME_THEN_WRITE, "{d}/secret", "{d}/moved", "{d}/moved/inner/f"],
        twin: &["python3", "-c", SYSCALL_RENAME_THEN_WRITE, "{d}/pub", "{d}/moved", "{d}/moved/a"],
        rules: INNER_WRITE, text: PERM, rule: "inner-write", calls: &["rename"],
        target: "{d}/secret", program: PY, setup: inner_tree, ..BASE };
    syscall_high_bits_unshare => Scenario { attack: &["{routes}", "sys-hi", "unshare"],
        twin: &["{routes}", "sys-hi", "getppid"], rules: NO_NS, text: EPERM,
        rule: "no-ns", calls: &["unshare"], target: "unshare", ..BASE };
    syscall_high_bits_ptrace => Scenario { attack: &["{routes}", "sys-hi", "ptrace"],
        twin: &["{routes}", "sys-hi", "getppid"], rules: NO_PTRACE, text: EPERM,
        rule: "no-ptrace", calls: &["ptrace"], target: "ptrace", ..BASE };
    syscall_perl_openat => Scenario {
        attack: &["perl", "-e", "syscall(257, -100, $ARGV[0], 0) >= 0 ? print qq(ok\n) : die qq(error: $!\n)", "{d}/secret/f"],
        twin: &["perl", "-e", "syscall(257, -100, $ARGV[0], 0) >= 0 ? print qq(ok\n) : die qq(error: $!\n)", "{d}/pub/a"],
        rules: SECRET, text: PERM, rule: "secret", calls: &["openat"], target: "{d}/secret/f",
        program: "/usr/bin/perl", ..BASE };
    syscall_python_ctypes_openat => Scenario {
        attack: &[PY, "-c", py_ctypes!("libc.syscall(257, -100, path, 0)"), "{d}/secret/f"],
        twin: &[PY, "-c", py_ctypes!("libc.syscall(257, -100, path, 0)"), "{d}/pub/a"],
        rules: SECRET, text: PERM, rule: "secret", calls: &["openat"], target: "{d}/secret/f",
        program: PY, ..BASE };

    // 2. glibc's public aliases.
    alias_open => Scenario { attack: &["{routes}", "alias", "__open", "{d}/secret/f"],
        twin: &["{routes}", "alias", "__open", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["open"], target: "{d}/secret/f", ..BASE };
    alias_open64 => Scenario { attack: &["{routes}", "alias", "__open64", "{d}/secret/f"],
        twin: &["{routes}", "alias", "__open64", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["open64"], target: "{d}/secret/f", ..BASE };
    alias_open_nocancel => Scenario { attack: &["{routes}", "alias", "__open_nocancel", "{d}/secret/f"],
        twin: &["{routes}", "alias", "__open_nocancel", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["open"], target: "{d}/secret/f", ..BASE };
    alias_io_fopen => Scenario { attack: &["{routes}", "alias", "_IO_fopen", "{d}/secret/f"],
        twin: &["{routes}", "alias", "_IO_fopen", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["fopen"], target: "{d}/secret/f", ..BASE };
    alias_connect => Scenario { attack: &["{routes}", "alias", "__connect", "127.0.0.2"],
        twin: &["{routes}", "alias", "__connect", "127.0.0.3"], rules: NO_PEER, text: EPERM,
        rule: "no-peer", calls: &["connect"], target: "127.0.0.2:", ..BASE };
    alias_io_popen => Scenario { attack: &["{routes}", "alias", "_IO_popen", "echo popened"],
        twin: &["{routes}", "alias", "_IO_popen", "echo popened"], rules: NO_SHELL,
        twin_rules: Some(NOTHING), text: PERM, rule: "no-shell", calls: &["popen"],
        target: "/bin/sh", ..BASE };
    alias_libc_system => Scenario { attack: &["{routes}", "alias", "__libc_system", "true"],
        twin: &["{routes}", "alias", "__libc_system", "true"], rules: NO_SHELL,
        twin_rules: Some(NOTHING), text: PERM, rule: "no-shell", calls: &["system"],
        target: "/bin/sh", ..BASE };
    alias_python_ctypes_open64 => Scenario {
        attack: &[PY, "-c", py_ctypes!("getattr(libc, '__open64')(path, 0)"), "{d}/secret/f"],
        twin: &[PY, "-c", py_ctypes!("getattr(libc, '__open64')(path, 0)"), "{d}/pub/a"],
        rules: SECRET, text: PERM, rule: "secret", calls: &["open64"], target: "{d}/secret/f",
        program: PY, ..BASE };

    // 5. Addresses parsed as the kernel parses them.
    address_any_v4_is_loopback => Scenario { attack: &["{routes}", "connect-any", "0.0.0.0"],
        twin: &["{routes}", "sys", "connect", "127.0.0.3"], rules: NO_LOOPBACK, text: EPERM,
        rule: "no-loopback", calls: &["connect"], target: "127.0.0.1:", ..BASE };
    address_any_v4_mapped_is_loopback => Scenario { attack: &["{routes}", "connect-any", "::ffff:0.0.0.0"],
        twin: &["{routes}", "sys", "connect", "127.0.0.3"], rules: NO_LOOPBACK, text: EPERM,
        rule: "no-loopback", calls: &["connect"], target: "127.0.0.1:", ..BASE };
    address_v6_length_24 => Scenario { attack: &["{routes}", "connect6-24", "::1"],
        twin: &["{routes}", "sys", "connect", "127.0.0.3"], rules: NO_LOOPBACK, text: EPERM,
        rule: "no-loopback", calls: &["connect"], target: "[::1]:", ..BASE };
    address_udp_unspec => Scenario { attack: &["{routes}", "sendto-unspec", "127.0.0.2"],
        twin: &["{routes}", "sendto-unspec", "127.0.0.3"], rules: NO_PEER, text: EPERM,
        rule: "no-peer", calls: &["sendto"], target: "127.0.0.2:", ..BASE };
    address_sendmmsg => Scenario { attack: &["{routes}", "sendmmsg", "127.0.0.2"],
        twin: &["{routes}", "sendmmsg", "127.0.0.3"], rules: NO_PEER, text: EPERM,
        rule: "no-peer", calls: &["sendmmsg"], target: "127.0.0.2:", ..BASE };

    // 6. Unix socket paths resolved as file paths.
    unix_relative => Scenario { attack: &["{routes}", "connect-unix", "api.sock"],
        twin: &["{routes}", "connect-unix", "../pub/api.sock"], cwd: "secret", rules: NO_SOCKET,
        text: EPERM, rule: "api-socket", calls: &["connect"], target: "{d}/secret/api.sock",
        setup: sockets, ..BASE };
    unix_dotdot => Scenario { attack: &["{routes}", "connect-unix", "{d}/pub/../secret/api.sock"],
        twin: &["{routes}", "connect-unix", "{d}/secret/../pub/api.sock"], rules: NO_SOCKET,
        text: EPERM, rule: "api-socket", calls: &["connect"], target: "{d}/secret/api.sock",
        setup: sockets, ..BASE };
    unix_double_slash_and_dot => Scenario { attack: &["{routes}", "connect-unix", "{d}//secret/./api.sock"],
        twin: &["{routes}", "connect-unix", "{d}//pub/./api.sock"], rules: NO_SOCKET,
        text: EPERM, rule: "api-socket", calls: &["connect"], target: "{d}/secret/api.sock",
        setup: sockets, ..BASE };
    unix_symlink => Scenario { attack: &["{routes}", "connect-unix", "{d}/link.sock"],
        twin: &["{routes}", "connect-unix", "{d}/pub/api.sock"], rules: NO_SOCKET,
        text: EPERM, rule: "api-socket", calls: &["connect"], target: "{d}/secret/api.sock",
        setup: sockets, ..BASE };
    unix_proc_self_cwd => Scenario { attack: &["{routes}", "connect-unix", "/proc/self/cwd/api.sock"],
        twin: &["{routes}", "connect-unix", "/proc/self/cwd/../pub/api.sock"], cwd: "secret",
        rules: NO_SOCKET, text: EPERM, rule: "api-socket", calls: &["connect"],
        target: "{d}/secret/api.sock", setup: sockets, ..BASE };
    unix_sendto_relative => Scenario { attack: &["{routes}", "sendto-unix", "dgram.sock"],
        twin: &["{routes}", "sendto-unix", "../pub/dgram.sock"], cwd: "secret", rules: NO_SOCKET,
        text: EPERM, rule: "api-socket", calls: &["sendto"], target: "{d}/secret/dgram.sock",
        setup: sockets, ..BASE };
    unix_sendmsg_relative => Scenario { attack: &["{routes}", "sendmsg-unix", "./dgram.sock"],
        twin: &["{routes}", "sendmsg-unix", "../pub/dgram.sock"], cwd: "secret", rules: NO_SOCKET,
        text: EPERM, rule: "api-socket", calls: &["sendmsg"], target: "{d}/secret/dgram.sock",
        setup: sockets, ..BASE };
    unix_python_relative => Scenario {
        attack: &[PY, "-c", "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1]); print('ok')\nexcept OSError as e:\n    print('error:', e.strerror); sys.exit(1)", "api.sock"],
        twin: &[PY, "-c", "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1]); print('ok')", "../pub/api.sock"],
        cwd: "secret", rules: NO_SOCKET, text: "error: Operation not permitted", rule: "api-socket",
        calls: &["connect"], target: "{d}/secret/api.sock", program: PY, setup: sockets, ..BASE };

    // 8. glibc functions that open, create or run internally.
    getent_shadow => Scenario { attack: &["getent", "shadow", "root"], twin: &["getent", "passwd", "root"],
        rules: NO_SHADOW, code: Some(2), rule: "shadow", calls: &["getspnam"], target: "/etc/shadow",
        program: "/usr/bin/getent", ..BASE };
    getspnam => Scenario { attack: &["{routes}", "getspnam", "root"],
        twin: &["{routes}", "getspnam", "root"], rules: NO_SHADOW, twin_rules: Some(NOTHING),
        text: PERM, rule: "shadow", calls: &["getspnam"], target: "/etc/shadow", ..BASE };
    mkstemp => Scenario { attack: &["{routes}", "mkstemp", "{d}/secret/tmpXXXXXX"],
        twin: &["{routes}", "mkstemp", "{d}/pub/tmpXXXXXX"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["mkstemp"], target: "{d}/secret/tmpXXXXXX", ..BASE };
    mkostemps => Scenario { attack: &["{routes}", "mkostemps", "{d}/secret/tmpXXXXXX"],
        twin: &["{routes}", "mkostemps", "{d}/pub/tmpXXXXXX"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["mkstemp"], target: "{d}/secret/tmpXXXXXX.txt", ..BASE };
    mkdtemp => Scenario { attack: &["{routes}", "mkdtemp", "{d}/secret/tmpXXXXXX"],
        twin: &["{routes}", "mkdtemp", "{d}/pub/tmpXXXXXX"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["mkdtemp"], target: "{d}/secret/tmpXXXXXX", ..BASE };
    mkfifo => Scenario { attack: &["{routes}", "mkfifo", "{d}/secret/fifo"],
        twin: &["{routes}", "mkfifo", "{d}/pub/fifo"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["mkfifo"], target: "{d}/secret/fifo", ..BASE };
    mkfifoat => Scenario { attack: &["{routes}", "mkfifoat", "{d}/secret/fifo"],
        twin: &["{routes}", "mkfifoat", "{d}/pub/fifo"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["mkfifoat"], target: "{d}/secret/fifo", ..BASE };
    freopen_null_upgrade => Scenario { attack: &["{routes}", "freopen-null", "{d}/secret/f"],
        twin: &["{routes}", "freopen-null", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["freopen"], target: "{d}/secret/f", ..BASE };
    setmntent => Scenario { attack: &["{routes}", "setmntent", "{d}/secret/f"],
        twin: &["{routes}", "setmntent", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["setmntent"], target: "{d}/secret/f", ..BASE };
    scandir => Scenario { attack: &["{routes}", "scandir", "{d}/secret"],
        twin: &["{routes}", "scandir", "{d}/pub"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["scandir"], target: "{d}/secret", ..BASE };
    glob_through_a_wildcard => Scenario { attack: &["{routes}", "glob", "{d}/*/*"],
        twin: &["{routes}", "glob", "{d}/pub/*"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["glob"], target: "{d}/secret", ..BASE };
    nftw => Scenario { attack: &["{routes}", "nftw", "{d}/secret"],
        twin: &["{routes}", "nftw", "{d}/pub"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["nftw"], target: "{d}/secret", ..BASE };
    nftw_hides_a_denied_subtree => Scenario { attack: &["{routes}", "nftw", "{d}"],
        twin: &["{routes}", "nftw", "{d}/pub"], rules: SECRET, code: Some(0),
        rule: "secret", calls: &["nftw"], target: "{d}/secret", ..BASE };
    nftw_chdir_relative => Scenario { attack: &["{routes}", "nftw-chdir", "."],
        twin: &["{routes}", "nftw-chdir", "pub"], rules: SECRET, code: Some(0),
        rule: "secret", calls: &["nftw"], target: "{d}/secret", ..BASE };
    ftw => Scenario { attack: &["{routes}", "ftw", "{d}/secret"],
        twin: &["{routes}", "ftw", "{d}/pub"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["nftw"], target: "{d}/secret", ..BASE };
    fts => Scenario { attack: &["{routes}", "fts", "{d}/secret"],
        twin: &["{routes}", "fts", "{d}/pub"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["fts_open"], target: "{d}/secret", ..BASE };
    fts_skips_a_denied_subtree => Scenario { attack: &["{routes}", "fts", "{d}"],
        twin: &["{routes}", "fts", "{d}/pub"], rules: SECRET, code: Some(0),
        rule: "secret", calls: &["fts_read"], target: "{d}/secret", ..BASE };
    remove => Scenario { attack: &["{routes}", "remove", "{d}/secret/f"],
        twin: &["{routes}", "remove", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["unlink"], target: "{d}/secret/f", ..BASE };
    tmpfile => Scenario { attack: &["{routes}", "tmpfile"], twin: &["{routes}", "tmpfile"],
        rules: NO_TMP, twin_rules: Some(NOTHING), text: PERM, rule: "no-tmp", calls: &["mkstemp"],
        target: "/tmp/tmpfXXXXXX", ..BASE };
    shm_open => Scenario { attack: &["{routes}", "shm_open", "/ldguard-secret-shm"],
        twin: &["{routes}", "shm_open", "/ldguard-pub-shm"], rules: NO_SHM, text: PERM,
        rule: "no-shm", calls: &["open"], permissive_calls: Some(&["open", "open", "unlink"]), target: "/dev/shm/ldguard-secret-shm", ..BASE };
    wordexp => Scenario { attack: &["{routes}", "wordexp", "$(echo substituted)"],
        twin: &["{routes}", "wordexp", "plain words"], rules: NO_SHELL, text: "error: wordexp 4",
        rule: "no-shell", calls: &["wordexp"], target: "/bin/sh", ..BASE };

    // 9. Descriptor and metadata writes.
    touch_write_denied => Scenario { attack: &["touch", "{d}/secret/f"], twin: &["touch", "{d}/pub/a"],
        rules: SECRET_WRITE, text: "Permission denied", rule: "secret-write",
        calls: &["open", "utimensat"], permissive_calls: Some(&["open"]),
        target: "{d}/secret/f", program: "/usr/bin/touch", ..BASE };
    fchmod_read_only_descriptor => Scenario { attack: &["{routes}", "fchmod", "{d}/secret/f"],
        twin: &["{routes}", "fchmod", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["fchmod"], target: "{d}/secret/f", ..BASE };
    fchmod_syscall => Scenario { attack: &["{routes}", "sys", "fchmod", "{d}/secret/f"],
        twin: &["{routes}", "sys", "fchmod", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["fchmod"], target: "{d}/secret/f", ..BASE };
    fchown_read_only_descriptor => Scenario { attack: &["{routes}", "fchown", "{d}/secret/f"],
        twin: &["{routes}", "fchown", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["fchown"], target: "{d}/secret/f", ..BASE };
    futimens => Scenario { attack: &["{routes}", "futimens", "{d}/secret/f"],
        twin: &["{routes}", "futimens", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["futimens"], target: "{d}/secret/f", ..BASE };
    utimes => Scenario { attack: &["{routes}", "utimes", "{d}/secret/f"],
        twin: &["{routes}", "utimes", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["utimes"], target: "{d}/secret/f", ..BASE };
    setxattr => Scenario { attack: &["{routes}", "setxattr", "{d}/secret/f"],
        twin: &["{routes}", "setxattr", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["setxattr"], target: "{d}/secret/f", ..BASE };
    fsetxattr => Scenario { attack: &["{routes}", "fsetxattr", "{d}/secret/f"],
        twin: &["{routes}", "fsetxattr", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["setxattr"], target: "{d}/secret/f", ..BASE };
    removexattr => Scenario { attack: &["{routes}", "removexattr", "{d}/secret/f"],
        twin: &["{routes}", "removexattr", "{d}/pub/a"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["removexattr"], target: "{d}/secret/f", ..BASE };
    bindresvport => Scenario { attack: &["{routes}", "bindresvport"],
        twin: &["{routes}", "bindresvport"], rules: NO_LOW_PORTS, twin_rules: Some(NOTHING),
        text: EPERM, rule: "no-low-ports", calls: &["bind"], target: "0.0.0.0:", ..BASE };
    bind_unix_socket_in_denied_tree => Scenario { attack: &["{routes}", "bind-unix", "{d}/secret/new.sock"],
        twin: &["{routes}", "bind-unix", "{d}/pub/new.sock"], rules: SECRET_WRITE, text: PERM,
        rule: "secret-write", calls: &["bind"], target: "{d}/secret/new.sock", ..BASE };

    // 10. Syscall rules cover every route to their capability.
    unshare_group_clone => Scenario { attack: &["{routes}", "clone"],
        twin: &["{routes}", "sys", "getppid"], rules: NO_NS, text: EPERM,
        rule: "no-ns", calls: &["unshare"], target: "unshare", ..BASE };
    unshare_group_syscall_clone => Scenario { attack: &["{routes}", "sys", "clone"],
        twin: &["{routes}", "sys", "getppid"], rules: NO_NS, text: EPERM,
        rule: "no-ns", calls: &["unshare"], target: "unshare", ..BASE };
    unshare_group_syscall_clone3 => Scenario { attack: &["{routes}", "sys", "clone3"],
        twin: &["{routes}", "sys", "getppid"], rules: NO_NS, text: EPERM,
        rule: "no-ns", calls: &["unshare"], target: "unshare", ..BASE };
    mount_group_open_tree => Scenario { attack: &["{routes}", "open_tree", "/tmp"],
        twin: &["{routes}", "sys", "getppid"], rules: NO_MOUNT, text: EPERM,
        rule: "no-mount", calls: &["mount"], target: "mount", ..BASE };
    mount_group_fsopen => Scenario { attack: &["{routes}", "fsopen"],
        twin: &["{routes}", "sys", "getppid"], rules: NO_MOUNT, text: EPERM,
        rule: "no-mount", calls: &["mount"], target: "mount", ..BASE };
    ptrace_group_process_vm_readv => Scenario { attack: &["{routes}", "process_vm_readv"],
        twin: &["{routes}", "sys", "getppid"], rules: NO_PTRACE, text: EPERM,
        rule: "no-ptrace", calls: &["ptrace"], target: "ptrace", ..BASE };
    ptrace_group_pidfd_getfd => Scenario { attack: &["{routes}", "pidfd_getfd"],
        twin: &["{routes}", "sys", "getppid"], rules: NO_PTRACE, text: EPERM,
        rule: "no-ptrace", calls: &["ptrace"], target: "ptrace", ..BASE };
    // A process's memory file, decided on the object the open reaches.
    ptrace_group_proc_self_mem => Scenario {
        attack: &[PY, "-c", "import sys; open(sys.argv[1], 'rb'); print('opened')", "/proc/self/mem"],
        twin: &[PY, "-c", "import sys; open(sys.argv[1], 'rb'); print('opened')", "/proc/self/comm"],
        rules: NO_PTRACE, text: "Operation not permitted",
        rule: "no-ptrace", calls: &["open64"], target: "/proc/self/mem", program: PY, ..BASE };
    ptrace_group_thread_self_mem => Scenario {
        attack: &[PY, "-c", "import sys; open(sys.argv[1], 'r+b'); print('opened')", "/proc/thread-self/mem"],
        twin: &[PY, "-c", "import sys; open(sys.argv[1], 'rb'); print('opened')", "/proc/thread-self/comm"],
        rules: NO_PTRACE, text: "Operation not permitted",
        rule: "no-ptrace", calls: &["open64"], target: "/proc/thread-self/mem", program: PY, ..BASE };
    ptrace_group_mem_symlink => Scenario {
        attack: &[PY, "-c", "import sys; open(sys.argv[1], 'rb'); print('opened')", "{d}/pub/mem-link"],
        twin: &[PY, "-c", "import sys; open(sys.argv[1], 'rb'); print('opened')", "{d}/pub/comm-link"],
        rules: NO_PTRACE, text: "Operation not permitted", setup: memory_links,
        rule: "no-ptrace", calls: &["open64"], target: "{d}/pub/mem-link", program: PY, ..BASE };
    ptrace_group_mem_syscall => Scenario {
        attack: &["perl", "-e", "syscall(257, -100, $ARGV[0], 0) >= 0 ? print qq(ok\n) : die qq(error: $!\n)", "/proc/self/mem"],
        twin: &["perl", "-e", "syscall(257, -100, $ARGV[0], 0) >= 0 ? print qq(ok\n) : die qq(error: $!\n)", "/proc/self/comm"],
        rules: NO_PTRACE, text: EPERM,
        rule: "no-ptrace", calls: &["openat"], target: "/proc/self/mem", program: "/usr/bin/perl", ..BASE };

    // 11. `host` rules in every resolver entry point.
    gethostbyname => Scenario { attack: &["{routes}", "gethostbyname", "localhost"],
        twin: &["{routes}", "gethostbyname", "vm"], rules: NO_HOST, text: EPERM,
        rule: "no-localhost", calls: &["gethostbyname"], target: "localhost", ..BASE };
    gethostbyname2_r => Scenario { attack: &["{routes}", "gethostbyname2_r", "localhost"],
        twin: &["{routes}", "gethostbyname2_r", "vm"], rules: NO_HOST, text: EPERM,
        rule: "no-localhost", calls: &["gethostbyname"], target: "localhost", ..BASE };
    getent_hosts => Scenario { attack: &["getent", "hosts", "localhost"], twin: &["getent", "hosts", "vm"],
        rules: NO_HOST, code: Some(2), rule: "no-localhost", calls: &["gethostbyname", "gethostbyname"],
        target: "localhost", program: "/usr/bin/getent", ..BASE };
    getaddrinfo_a => Scenario { attack: &["{routes}", "getaddrinfo_a", "localhost"],
        twin: &["{routes}", "getaddrinfo_a", "vm"], rules: NO_HOST, text: EPERM,
        rule: "no-localhost", calls: &["getaddrinfo"], target: "localhost", ..BASE };
    perl_gethostbyname => Scenario {
        attack: &["perl", "-e", "my @h = gethostbyname($ARGV[0]) or die qq(error: $!\n); print qq(ok\n)", "localhost"],
        twin: &["perl", "-e", "my @h = gethostbyname($ARGV[0]) or die qq(error: $!\n); print qq(ok\n)", "vm"],
        rules: NO_HOST, text: EPERM, rule: "no-localhost", calls: &["gethostbyname"],
        target: "localhost", program: "/usr/bin/perl", ..BASE };

    // 3. PATH searches: the candidate the kernel runs is the one checked.
    execvp_decoy_directory_in_path => Scenario {
        attack: &["env", "PATH={d}/decoy:/usr/bin", "id", "-u"],
        twin: &["env", "PATH={d}/decoy:/usr/bin", "echo", "twin"], rules: NO_ID, code: Some(126),
        text: "Permission denied", rule: "no-id", calls: &["execvp"], target: "/usr/bin/id",
        program: "/usr/bin/env", setup: decoys, ..BASE };
    execvp_through_timeout => Scenario {
        attack: &["env", "PATH={d}/decoy:/usr/bin", "timeout", "5", "id", "-u"],
        twin: &["env", "PATH={d}/decoy:/usr/bin", "timeout", "5", "echo", "twin"], rules: NO_ID,
        code: Some(126), text: "Permission denied", rule: "no-id", calls: &["execvp"],
        target: "/usr/bin/id", program: "/usr/bin/timeout", setup: decoys, ..BASE };
    execvp_probe => Scenario {
        attack: &["env", "PATH={d}/decoy:/usr/bin", "{spawn}", "execvp", "id", "-u"],
        twin: &["env", "PATH={d}/decoy:/usr/bin", "{spawn}", "execvp", "echo", "twin"], rules: NO_ID,
        text: PERM, rule: "no-id", calls: &["execvp"], target: "/usr/bin/id",
        program: "{spawn}", setup: decoys, ..BASE };
    posix_spawnp_decoy_directory_in_path => Scenario {
        attack: &["env", "PATH={d}/decoy:/usr/bin", "{spawn}", "spawnp", "id", "-u"],
        twin: &["env", "PATH={d}/decoy:/usr/bin", "{spawn}", "spawnp", "echo", "twin"], rules: NO_ID,
        text: PERM, rule: "no-id", calls: &["posix_spawnp"], target: "/usr/bin/id",
        program: "{spawn}", setup: decoys, ..BASE };

    // 4. Interpreters and the loader.
    shebang_interpreter => Scenario { attack: &["/bin/sh", "-c", "{d}/pub/script"],
        twin: &["/bin/sh", "-c", "{d}/pub/twin"], rules: NO_ID, code: Some(126),
        text: "Permission denied", rule: "no-id", calls: &["execve"], target: "/usr/bin/id",
        program: "/usr/bin/dash", setup: scripts, ..BASE };
    shebang_through_a_link_beside_the_script => Scenario {
        attack: &["/bin/sh", "-c", "{d}/pub/script-link"],
        twin: &["/bin/sh", "-c", "{d}/pub/twin-link"], rules: NO_ID, code: Some(126),
        text: "Permission denied", rule: "no-id", calls: &["execve"], target: "/usr/bin/id",
        program: "/usr/bin/dash", setup: scripts, ..BASE };
    shebang_nested_interpreter => Scenario { attack: &["/bin/sh", "-c", "{d}/pub/nested"],
        twin: &["/bin/sh", "-c", "{d}/pub/twin"], rules: NO_ID, code: Some(126),
        text: "Permission denied", rule: "no-id", calls: &["execve"], target: "/usr/bin/id",
        program: "/usr/bin/dash", setup: scripts, ..BASE };
    shebang_loader_with_a_program => Scenario { attack: &["/bin/sh", "-c", "{d}/pub/loader"],
        twin: &["/bin/sh", "-c", "{d}/pub/loader_twin"], rules: NO_ID, code: Some(126),
        text: "Permission denied", rule: "no-id", calls: &["execve"], target: "/usr/bin/id",
        program: "/usr/bin/dash", setup: scripts, ..BASE };
    loader_runs_a_program => Scenario {
        attack: &["/bin/sh", "-c", "/lib64/ld-linux-x86-64.so.2 /usr/bin/id -u"],
        twin: &["/bin/sh", "-c", "/lib64/ld-linux-x86-64.so.2 /usr/bin/echo twin"], rules: NO_ID,
        code: Some(126), text: "Permission denied", rule: "no-id", calls: &["execve"],
        target: "/usr/bin/id", program: "/usr/bin/dash", ..BASE };
    loader_options_before_the_program => Scenario {
        attack: &["/bin/sh", "-c", "/lib64/ld-linux-x86-64.so.2 --argv0 x --library-path /usr/lib /usr/bin/id -u"],
        twin: &["/bin/sh", "-c", "/lib64/ld-linux-x86-64.so.2 --argv0 x --library-path /usr/lib /usr/bin/echo twin"],
        rules: NO_ID, code: Some(126), text: "Permission denied", rule: "no-id", calls: &["execve"],
        target: "/usr/bin/id", program: "/usr/bin/dash", ..BASE };
    loader_program_identity => Scenario { attack: &[LOADER, "/usr/bin/cat", "{d}/secret/f"],
        twin: &[LOADER, "/usr/bin/cat", "{d}/pub/a"], rules: CAT_SECRET, code: Some(1),
        text: "Permission denied", rule: "cat-secret", calls: &["open"], target: "{d}/secret/f",
        program: "/usr/bin/cat", ..BASE };

    // 7. posix_spawn file actions.
    spawn_file_action_open => Scenario { attack: &["{spawn}", "spawn-open", "{d}/secret/f"],
        twin: &["{spawn}", "spawn-open", "{d}/pub/a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["posix_spawn"], target: "{d}/secret/f", program: "{spawn}", ..BASE };
    spawn_file_action_open_after_chdir => Scenario {
        attack: &["{spawn}", "spawn-open-chdir", "{d}/secret", "f"],
        twin: &["{spawn}", "spawn-open-chdir", "{d}/pub", "a"], rules: SECRET, text: PERM,
        rule: "secret", calls: &["posix_spawn"], target: "{d}/secret/f", program: "{spawn}", ..BASE };
    spawn_file_action_python => Scenario {
        attack: &["python3", "-c", "import os, sys\ntry:\n    pid = os.posix_spawn('/bin/cat', ['cat'], os.environ, file_actions=[(os.POSIX_SPAWN_OPEN, 0, sys.argv[1], os.O_RDONLY, 0)])\n    os.waitpid(pid, 0)\nexcept OSError as e:\n    print('error:', e.strerror)\n    sys.exit(1)\n", "{d}/secret/f"],
        twin: &["python3", "-c", "import os, sys\ntry:\n    pid = os.posix_spawn('/bin/cat', ['cat'], os.environ, file_actions=[(os.POSIX_SPAWN_OPEN, 0, sys.argv[1], os.O_RDONLY, 0)])\n    os.waitpid(pid, 0)\nexcept OSError as e:\n    print('error:', e.strerror)\n    sys.exit(1)\n", "{d}/pub/a"],
        rules: SECRET, text: PERM, rule: "secret", calls: &["posix_spawn"], target: "{d}/secret/f",
        program: PY, ..BASE };

    // 12. Moving or linking what may not be read out from under its rule.
    link_read_denied_file => Scenario {
        attack: &["/bin/sh", "-c", "ln {d}/secret/f {d}/pub/l && cat {d}/pub/l"],
        twin: &["/bin/sh", "-c", "ln {d}/pub/a {d}/pub/l && cat {d}/pub/l"],
        rules: SECRET_READ, text: "Permission denied", rule: "secret-read", calls: &["linkat"],
        target: "{d}/secret/f", program: "/usr/bin/ln", ..BASE };
    rename_read_denied_file => Scenario {
        attack: &["/bin/sh", "-c", "mv {d}/secret/f {d}/pub/m && cat {d}/pub/m"],
        twin: &["/bin/sh", "-c", "mv {d}/pub/a {d}/pub/m && cat {d}/pub/m"],
        rules: SECRET_READ, text: "Permission denied", rule: "secret-read", calls: &["renameat2"],
        target: "{d}/secret/f", program: "/usr/bin/mv", ..BASE };
    rename_directory_above_a_read_denied_file => Scenario {
        attack: &["/bin/sh", "-c", "mkdir {d}/secret/sub && echo x > {d}/secret/sub/g && mv {d}/secret/sub {d}/pub/sub && cat {d}/pub/sub/g"],
        twin: &["/bin/sh", "-c", "mkdir {d}/pub/sub && echo x > {d}/pub/sub/g && mv {d}/pub/sub {d}/pub/sub2 && cat {d}/pub/sub2/g"],
        rules: SECRET_READ, text: "Permission denied", rule: "secret-read", calls: &["renameat2"],
        target: "{d}/secret/sub", program: "/usr/bin/mv", ..BASE };
    rename_exchange_read_denied_file => Scenario {
        attack: &["python3", "-c", RENAME_EXCHANGE, "{d}/secret/f", "{d}/pub/a"],
        twin: &["python3", "-c", RENAME_EXCHANGE, "{d}/pub/a", "{d}/pub/b"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["renameat2"],
        target: "{d}/secret/f", program: PY, setup: second_public_file, ..BASE };
    link_through_a_descriptor_link => Scenario {
        attack: &["python3", "-c", LINK_PROC_FD, "{d}/secret/f", "{d}/pub/l"],
        twin: &["python3", "-c", LINK_PROC_FD, "{d}/pub/a", "{d}/pub/l"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["linkat"],
        // The path as given (python's first descriptor); the event's
        // `resolved` names the file.
        target: "/proc/self/fd/3", program: PY, ..BASE };
    rename_directory_below_a_wildcard => Scenario {
        attack: &["/bin/sh", "-c", "mv {d}/secret {d}/pub/s && cat {d}/pub/s/inner/f"],
        twin: &["/bin/sh", "-c", "mkdir {d}/pub/sub && echo x > {d}/pub/sub/g && mv {d}/pub/sub {d}/pub/sub2 && cat {d}/pub/sub2/g"],
        rules: WILD_INNER_READ, text: "Permission denied", rule: "wild-inner", calls: &["renameat2"],
        target: "{d}/secret", program: "/usr/bin/mv", setup: inner_tree, ..BASE };
    rename_directory_inside_a_floating_rule => Scenario {
        attack: &["/bin/sh", "-c", "mv {d}/secret/inner {d}/pub/moved && cat {d}/pub/moved/f"],
        twin: &["/bin/sh", "-c", "mkdir {d}/pub/sub && echo x > {d}/pub/sub/g && mv {d}/pub/sub {d}/pub/sub2 && cat {d}/pub/sub2/g"],
        rules: FLOATING_INNER_READ, text: "Permission denied", rule: "floating-inner",
        calls: &["renameat2"], target: "{d}/secret/inner", program: "/usr/bin/mv",
        setup: inner_tree, ..BASE };
    // A deleted file keeps its last name: reopened through a descriptor
    // that reads nothing (`O_PATH`), it is still the file the rule names.
    deleted_file_reopened_through_its_descriptor => Scenario {
        attack: &["python3", "-c", UNLINK_THEN_REOPEN, "{d}/secret/f"],
        twin: &["python3", "-c", UNLINK_THEN_REOPEN, "{d}/pub/a"],
        rules: SECRET_FILE_READ, text: PERM, rule: "secret-file-read", calls: &["open64"],
        target: "/proc/self/fd/3", program: PY, ..BASE };
    // A unix socket is reached by its inode: a second name for it
    // reaches the same listener.
    unix_socket_hard_link => Scenario {
        attack: &["python3", "-c", LINK_CONNECT, "{d}/secret/api.sock", "{d}/pub/l.sock"],
        twin: &["python3", "-c", LINK_CONNECT, "{d}/pub/api.sock", "{d}/pub/l.sock"],
        rules: NO_SOCKET, text: EPERM, rule: "api-socket", calls: &["link"],
        target: "{d}/secret/api.sock", program: PY, setup: sockets, ..BASE };
    unix_socket_rename => Scenario {
        attack: &["/bin/sh", "-c", "mv {d}/secret/api.sock {d}/pub/m.sock && {routes} connect-unix {d}/pub/m.sock"],
        twin: &["/bin/sh", "-c", "mv {d}/pub/api.sock {d}/pub/m.sock && {routes} connect-unix {d}/pub/m.sock"],
        rules: NO_SOCKET, text: "Operation not permitted", rule: "api-socket",
        calls: &["renameat2"], target: "{d}/secret/api.sock", program: "/usr/bin/mv",
        setup: sockets, ..BASE };

    // 13. A new root: every path the process names afterwards means
    // another file.
    chroot_into_a_denied_tree => Scenario {
        attack: &["python3", "-c", CHROOT_READ, "{d}/secret", "/f"],
        twin: &["python3", "-c", CHROOT_READ, "{d}/pub", "/a"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["chroot"],
        target: "{d}/secret", program: PY, ..BASE };
    chroot_above_a_denied_tree => Scenario {
        attack: &["python3", "-c", CHROOT_READ, "{d}", "/secret/f"],
        twin: &["python3", "-c", CHROOT_READ, "{d}/pub", "/a"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["chroot"],
        target: "{d}", program: PY, ..BASE };
    pivot_root_moves_the_old_root => Scenario {
        attack: &["python3", "-c", PIVOT_ROOT_READ, "{d}/pub/root", "{d}/secret/f"],
        twin: &["python3", "-c", PIVOT_ROOT_READ, "{d}/pub/root", "{d}/pub/a"],
        rules: SECRET_READ, twin_rules: Some(NOTHING), text: PERM, rule: "secret-read",
        calls: &["pivot_root"], target: "/", program: PY, ..BASE };
    bind_mount_of_a_denied_tree => Scenario {
        attack: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x && mount --bind {d}/secret {d}/pub/x && cat {d}/pub/x/f"],
        twin: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x && mount --bind {d}/pub {d}/pub/x && cat {d}/pub/x/a"],
        // mount(8) says only "failed"; the event says why.
        rules: SECRET_READ, text: "failed", rule: "secret-read", calls: &["mount"],
        target: "{d}/secret", program: "/usr/bin/mount", ..BASE };
    open_tree_clone_of_a_denied_tree => Scenario {
        attack: &["python3", "-c", OPEN_TREE_READ, "{d}/secret", "{d}/pub/x", "f"],
        twin: &["python3", "-c", OPEN_TREE_READ, "{d}/pub", "{d}/pub/x", "a"],
        // The new mount API is reported as `mount` (its syscall group).
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["mount"],
        target: "{d}/secret", program: PY, ..BASE };
    // The mount it moves is made without the library (as a volume is).
    move_mount_of_a_denied_tree => Scenario {
        attack: &["unshare", "-rm", "/bin/sh", "-c", "LD_PRELOAD= mount --bind {d}/secret {d}/secret && mkdir {d}/pub/x && python3 -c \"$0\" {d}/secret {d}/pub/x f", MOVE_MOUNT_READ],
        twin: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/y && echo data > {d}/pub/y/a && LD_PRELOAD= mount --bind {d}/pub/y {d}/pub/y && mkdir {d}/pub/x && python3 -c \"$0\" {d}/pub/y {d}/pub/x a", MOVE_MOUNT_READ],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["mount"],
        target: "{d}/secret", program: PY, ..BASE };
    // An overlay shows its layers' files under its mount point: a lower
    // layer is read through it, the upper layer also written.
    overlay_lower_layer_of_a_denied_tree => Scenario {
        attack: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x {d}/pub/l && mount -t overlay overlay -o lowerdir={d}/secret:{d}/pub/l {d}/pub/x && cat {d}/pub/x/f"],
        twin: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x {d}/pub/l && mount -t overlay overlay -o lowerdir={d}/pub:{d}/pub/l {d}/pub/x && cat {d}/pub/x/a"],
        // mount(8) tries again read-only after EACCES.
        rules: SECRET_READ, text: "cannot mount", rule: "secret-read", calls: &["mount", "mount"],
        permissive_calls: Some(&["mount"]), target: "{d}/secret", program: "/usr/bin/mount", ..BASE };
    overlay_upper_layer_in_a_write_denied_tree => Scenario {
        attack: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x {d}/pub/l {d}/pub/w && mount -t overlay overlay -o lowerdir={d}/pub/l,upperdir={d}/secret,workdir={d}/pub/w {d}/pub/x && echo changed > {d}/pub/x/f && cat {d}/secret/f"],
        twin: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x {d}/pub/l {d}/pub/u {d}/pub/w && mount -t overlay overlay -o lowerdir={d}/pub/l,upperdir={d}/pub/u,workdir={d}/pub/w {d}/pub/x && echo changed > {d}/pub/x/f && cat {d}/pub/u/f"],
        rules: SECRET_WRITE, text: "cannot mount", rule: "secret-write", calls: &["mount", "mount"],
        permissive_calls: Some(&["mount"]),
        target: "{d}/secret", program: "/usr/bin/mount", ..BASE };
    overlay_layer_through_fsconfig => Scenario {
        attack: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x {d}/pub/l && python3 -c \"$0\" {d}/secret:{d}/pub/l {d}/pub/x f", FSCONFIG_OVERLAY_READ],
        twin: &["unshare", "-rm", "/bin/sh", "-c", "mkdir {d}/pub/x {d}/pub/l && python3 -c \"$0\" {d}/pub:{d}/pub/l {d}/pub/x a", FSCONFIG_OVERLAY_READ],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["mount"],
        target: "{d}/secret", program: PY, ..BASE };
    overlay_layer_by_descriptor => Scenario {
        attack: &["unshare", "-rm", "python3", "-c", FSCONFIG_OVERLAY_FD_READ, "{d}/secret:{d}/pub/l", "{d}/pub/x", "f"],
        twin: &["unshare", "-rm", "python3", "-c", FSCONFIG_OVERLAY_FD_READ, "{d}/pub/m:{d}/pub/l", "{d}/pub/x", "a"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["mount"],
        target: "/proc/self/fd/4", program: PY, setup: overlay_layers, ..BASE };
    // A file system on a block device may hold any file a rule names (the
    // container's own root lies on one): a second name for every file.
    block_device_mounted_again => Scenario {
        attack: &["unshare", "-m", "/bin/sh", "-c", "mkdir {d}/pub/x && mount $(cat {d}/pub/dev) {d}/pub/x && cat {d}/pub/x/f"],
        twin: &["unshare", "-m", "/bin/sh", "-c", "mkdir {d}/pub/x && mount $(cat {d}/pub/dev) {d}/pub/x && cat {d}/pub/x/f"],
        rules: SECRET_READ, twin_rules: Some(NOTHING), text: "cannot mount", rule: "secret-read",
        calls: &["mount", "mount"], permissive_calls: Some(&["mount"]), target: "/",
        program: "/usr/bin/mount",
        setup: secret_on_a_loop_device, ..BASE };
    // A file system image as the source (erofs mounts a regular file).
    filesystem_image_of_a_denied_file => Scenario {
        attack: &["unshare", "-m", "python3", "-c", MOUNT_IMAGE_READ, "{d}/secret/img", "{d}/pub/x", "f"],
        twin: &["unshare", "-m", "python3", "-c", MOUNT_IMAGE_READ, "{d}/pub/img", "{d}/pub/x", "a"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["mount"],
        target: "{d}/secret/img", program: PY, setup: filesystem_images, ..BASE };
    // The kernel's own file systems are the same in every mount.
    sysfs_mounted_again => Scenario {
        attack: &["unshare", "-rmn", "/bin/sh", "-c", "mkdir {d}/pub/s && mount -t sysfs sysfs {d}/pub/s && cat {d}/pub/s/kernel/mm/transparent_hugepage/enabled"],
        twin: &["unshare", "-rmn", "/bin/sh", "-c", "mkdir {d}/pub/s && mount -t sysfs sysfs {d}/pub/s && cat {d}/pub/s/kernel/mm/transparent_hugepage/enabled"],
        rules: NO_SYS_MM, twin_rules: Some(NOTHING), text: "cannot mount", rule: "no-sys-mm",
        calls: &["mount", "mount"], permissive_calls: Some(&["mount"]), target: "/sys",
        program: "/usr/bin/mount", ..BASE };
    proc_through_fsopen => Scenario {
        attack: &["unshare", "-m", "python3", "-c", FSOPEN_READ, "proc", "{d}/pub/p", "cmdline"],
        twin: &["unshare", "-m", "python3", "-c", FSOPEN_READ, "proc", "{d}/pub/p", "cmdline"],
        rules: NO_CMDLINE, twin_rules: Some(NOTHING), text: PERM, rule: "no-cmdline",
        calls: &["mount"], target: "/proc", program: PY, ..BASE };
    // 14. Another name for a device: a node is the device whatever its path.
    mknod_of_a_denied_device => Scenario {
        attack: &["python3", "-c", MKNOD_READ, "{d}/pub/disk", "b", "7", "0"],
        twin: &["python3", "-c", MKNOD_READ, "{d}/pub/null", "c", "1", "3"],
        rules: NO_LOOP_DEVICES, text: PERM, rule: "no-loop", calls: &["mknod"],
        target: "/dev/loop0", program: PY, ..BASE };
    syscall_chroot => Scenario {
        attack: &["python3", "-c", SYSCALL_CHROOT_READ, "{d}/secret", "/f"],
        twin: &["python3", "-c", SYSCALL_CHROOT_READ, "{d}/pub", "/a"],
        rules: SECRET_READ, text: PERM, rule: "secret-read", calls: &["chroot"],
        target: "{d}/secret", program: PY, ..BASE };
}
