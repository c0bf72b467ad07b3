/**
 * The integration test rig of test-rig.md §2: Debian's `docker-registry` on 127.0.0.1 (plain,
 * htpasswd Basic auth, or Bearer tokens from a token server in this process), the reproducible
 * test images built in a separate build storage and pushed, and a podman libpod service with its
 * own storage root. Everything a helper starts is stopped by its recorded PID, never by name.
 *
 * ```ts
 * await using dir = await scratchDir();
 * await using reg = await startRegistry(dir.path);              // plain http, free port
 * const images = await pushTestImages(dir.path, reg.host);      // rig/base:1, rig/layered:1, …
 * await using auth = await startRegistry(dir.path, { auth: "token", dataDir: reg.dataDir, credentials });
 * await using pod = await startPodman(dir.path, { driver: "overlay", insecureRegistry: reg.host });
 * await pod.service.client.pull(`${reg.host}/rig/base:1`);
 * ```
 *
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import { PodmanService } from "../../lib/podman/service.ts";
import { cleanupOverlayMounts } from "../../lib/podman/service.ts";
import { run } from "./cli.ts";

/** Credentials for the auth variants of the registry. */
export interface RigCredentials {
  username: string;
  password: string;
}

/** Options of {@link startRegistry}. */
export interface RegistryOptions {
  /** `none` (default), `htpasswd` (Basic), or `token` (Bearer from a token server in this process). */
  auth?: "none" | "htpasswd" | "token";
  /** Required for `htpasswd` and `token`: the only accepted user. */
  credentials?: RigCredentials;
  /** Serve this storage directory (e.g. another registry's `dataDir`, so images need no second push). */
  dataDir?: string;
  /** Port to listen on (default: a free one). Used by {@link RigRegistry.restart}. */
  port?: number;
}

/** A running docker-registry. */
export interface RigRegistry extends AsyncDisposable {
  /** `127.0.0.1:<port>`, the registry part of image references. */
  readonly host: string;
  /** Storage root directory (shareable with another registry). */
  readonly dataDir: string;
  /** The registry's log (appended across restarts): one access-log line per request. */
  readonly logFile: string;
  /** Current PID of the registry process. */
  readonly pid: number;
  /** The token server's URL for `auth: "token"`. */
  readonly tokenRealm?: string;
  /** Stops the process (SIGTERM, or SIGKILL to simulate a crash). */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same port and storage. */
  restart(): Promise<void>;
}

/** A port on 127.0.0.1 nobody listens on right now. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 10; i++) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (!(await answers(`http://127.0.0.1:${port}/v2/`))) return port;
  }
  throw new Error("no free port on 127.0.0.1");
}

/** True if anything answers HTTP at `url` (any status). */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** Waits for `p` at most `ms`; false if it did not settle in time (the timer is cleared either way). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p.then(() => true, () => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** True while `pid` exists and is not a zombie (cmdline is briefly empty while a process execs). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Kills `pid` only if its command line still contains `mark` (stale PID files point anywhere). */
async function stopPid(pid: number, mark: string, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  if (!cmdline(pid).includes(mark)) return;
  try {
    Deno.kill(pid, signal);
  } catch {
    return;
  }
  if (!(await waitGone(pid, 10_000)) && cmdline(pid).includes(mark)) {
    Deno.kill(pid, "SIGKILL");
    await waitGone(pid, 5_000);
  }
}

/** Reads the PID a wrapper shell prints on its first line (bounded: a wrapper that dies says nothing). */
async function firstLinePid(stdout: ReadableStream<Uint8Array>, ms: number): Promise<number> {
  const reader = stdout.getReader();
  let text = "";
  const timer = setTimeout(() => reader.cancel(new Error("no PID from the registry wrapper")), ms);
  try {
    while (!text.includes("\n")) {
      const r = await reader.read();
      if (r.done) break;
      text += new TextDecoder().decode(r.value);
    }
  } finally {
    clearTimeout(timer);
    // The rest of stdout is not needed; cancelling lets the pipe close.
    await reader.cancel().catch(() => {});
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`registry wrapper printed no PID: ${JSON.stringify(text)}`);
  return pid;
}

const HTPASSWD_NOTE = "htpasswd (Debian package apache2-utils) is needed for the htpasswd registry";

/**
 * Starts `docker-registry serve` on 127.0.0.1 (test-rig.md §2.1) with its config, data, log and
 * PID file in `<dir>/registry-<port>/`. Refuses a port where something already answers; a live
 * registry left by an earlier run of the same directory and port (its PID file) is stopped first.
 */
export async function startRegistry(dir: string, options: RegistryOptions = {}): Promise<RigRegistry> {
  const port = options.port ?? await freePort();
  const host = `127.0.0.1:${port}`;
  const base = `${dir}/registry-${port}`;
  const dataDir = options.dataDir ?? `${base}/data`;
  const config = `${base}/config.yml`;
  const pidFile = `${base}/registry.pid`;
  await Deno.mkdir(base, { recursive: true });
  await Deno.mkdir(dataDir, { recursive: true });
  const stale = Number(await Deno.readTextFile(pidFile).catch(() => "0"));
  if (stale > 0) await stopPid(stale, config, "SIGTERM");
  if (await answers(`http://${host}/v2/`)) throw new Error(`something already answers on http://${host}/v2/`);

  let authYaml = "";
  let token: TokenServer | undefined;
  if (options.auth === "htpasswd" || options.auth === "token") {
    if (!options.credentials) throw new Error(`auth "${options.auth}" needs credentials`);
  }
  if (options.auth === "htpasswd") {
    const c = options.credentials!;
    let line: string;
    try {
      line = await run("htpasswd", ["-Bbn", c.username, c.password]);
    } catch (e) {
      throw new Error(HTPASSWD_NOTE, { cause: e });
    }
    await Deno.writeTextFile(`${base}/htpasswd`, line.trim() + "\n");
    authYaml = `auth:\n  htpasswd:\n    realm: rig\n    path: ${base}/htpasswd\n`;
  } else if (options.auth === "token") {
    token = await startTokenServer(base, options.credentials!);
    authYaml =
      `auth:\n  token:\n    realm: ${token.realm}\n    service: ${TOKEN_SERVICE}\n    issuer: ${TOKEN_ISSUER}\n` +
      `    rootcertbundle: ${token.certFile}\n`;
  }
  await Deno.writeTextFile(
    config,
    `version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: ${dataDir}
  delete:
    enabled: true
http:
  addr: ${host}
  headers:
    X-Content-Type-Options: [nosniff]
${authYaml}`,
  );

  let child: Deno.ChildProcess | undefined;
  let registryPid = 0;
  let lifeline: WritableStreamDefaultWriter<Uint8Array> | undefined;
  const start = async () => {
    // The registry runs under a small shell that holds a pipe from this process on its stdin: when
    // this process dies in any way (test timeout, SIGKILL), the pipe reaches EOF and the shell
    // SIGKILLs the registry, so no registry outlives its test run. The shell prints the
    // registry's PID, which is what `stop` signals (a crash test kills the registry, not the shell).
    child = new Deno.Command("sh", {
      args: [
        "-c",
        'docker-registry serve "$1" >>"$2" 2>&1 </dev/null & echo $!; read -r _; kill -KILL $! 2>/dev/null; wait',
        "sh",
        config,
        `${base}/registry.log`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      detached: true,
    }).spawn();
    lifeline = child.stdin.getWriter();
    registryPid = await firstLinePid(child.stdout, 10_000);
    await Deno.writeTextFile(pidFile, String(registryPid));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (!alive(registryPid)) {
        await stop("SIGKILL");
        throw new Error(`docker-registry exited at start; see ${base}/registry.log`);
      }
      if (await answers(`http://${host}/v2/`)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    await stop("SIGKILL");
    throw new Error(`docker-registry did not answer on ${host} within 15 s`);
  };
  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => {
    if (!child) return;
    if (registryPid) await stopPid(registryPid, config, signal);
    // Closing the lifeline lets the shell finish (it kills the registry if it is still there).
    await lifeline?.close().catch(() => {});
    if (!(await settlesWithin(child.status, 15_000))) {
      throw new Error(`the registry wrapper (PID ${child.pid}) did not exit within 15 s`);
    }
    child = undefined;
    registryPid = 0;
    await Deno.remove(pidFile).catch(() => {});
  };
  try {
    await start();
  } catch (e) {
    await token?.close();
    throw e;
  }
  return {
    host,
    dataDir,
    logFile: `${base}/registry.log`,
    get pid() {
      return registryPid;
    },
    tokenRealm: token?.realm,
    stop,
    restart: async () => {
      await stop("SIGTERM");
      await start();
    },
    async [Symbol.asyncDispose]() {
      await stop("SIGTERM");
      await token?.close();
    },
  };
}

const TOKEN_SERVICE = "rig-registry";
const TOKEN_ISSUER = "rig-token-issuer";

interface TokenServer {
  realm: string;
  certFile: string;
  close(): Promise<void>;
}

function base64url(bytes: Uint8Array | string): string {
  const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/**
 * A Docker token server (distribution "token" auth): `GET /token?service&scope` with Basic
 * credentials returns an ES256 JWT whose `x5c` header carries the self-signed certificate the
 * registry trusts (`rootcertbundle`). Wrong or missing credentials get 401.
 */
async function startTokenServer(dir: string, creds: RigCredentials): Promise<TokenServer> {
  const keyFile = `${dir}/token-key.pem`;
  const certFile = `${dir}/token-cert.pem`;
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    "/CN=rig-token",
  ]);
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(await Deno.readTextFile(keyFile)),
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  const x5c = btoa(String.fromCharCode(...pemBody(await Deno.readTextFile(certFile))));
  const expected = `Basic ${btoa(`${creds.username}:${creds.password}`)}`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (req.headers.get("authorization") !== expected) {
      return Response.json({ details: "bad credentials" }, { status: 401 });
    }
    const url = new URL(req.url);
    const access = url.searchParams.getAll("scope").map((s) => {
      const [type, name, actions] = s.split(":");
      return { type, name, actions: actions.split(",") };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ typ: "JWT", alg: "ES256", x5c: [x5c] }));
    const claims = base64url(JSON.stringify({
      iss: TOKEN_ISSUER,
      sub: creds.username,
      aud: url.searchParams.get("service") ?? TOKEN_SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    }));
    const sig = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        key,
        new TextEncoder().encode(`${header}.${claims}`),
      ),
    );
    const token = `${header}.${claims}.${base64url(sig)}`;
    return Response.json({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() });
  });
  return { realm: `http://127.0.0.1:${server.addr.port}/token`, certFile, close: () => server.shutdown() };
}

/** `gen(N, seed)` of test-rig.md §2.3: SHA-256(seed ‖ counter(8-byte LE)) blocks, cut to N bytes. */
export function gen(n: number, seed: string): Uint8Array {
  const out = new Uint8Array(n);
  const counter = new Uint8Array(8);
  const view = new DataView(counter.buffer);
  for (let i = 0, off = 0; off < n; i++, off += 32) {
    view.setBigUint64(0, BigInt(i), true);
    const block = createHash("sha256").update(seed).update(counter).digest();
    out.set(block.subarray(0, Math.min(32, n - off)), off);
  }
  return out;
}

/** The test images as pushed, with the manifest digests the registry reports. */
export interface TestImages {
  /** `host/rig/base:1` (OCI manifest, one layer). */
  base: string;
  /** `host/rig/base:docker` (the same image as Docker v2s2). */
  baseDocker: string;
  /** `host/rig/layered:1` (base + whiteout, opaque dir and COPY layers). */
  layered: string;
  /** `host/rig/bootable:1` (a bootc-like tree with kernel and initramfs). */
  bootable: string;
  /** `host/rig/multi:1` (OCI index: linux/amd64 = base, linux/arm64 = a tiny image). */
  multi: string;
  /** `host/rig/arm64:1`, the arm64 member of `multi`. */
  arm64: string;
  /** Manifest digest of each reference above, from the registry's `Docker-Content-Digest`. */
  digests: Record<string, string>;
}

async function writeFiles(root: string, files: Record<string, Uint8Array | string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const full = `${root}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(full, content);
    else await Deno.writeFile(full, content);
    await Deno.chmod(full, 0o644);
  }
}

async function makeContexts(ctx: string): Promise<void> {
  const base = `${ctx}/base/rootfs`;
  const dataFiles: Record<string, Uint8Array | string> = {
    "etc/hostname": "rig-base\n",
    "data/empty": "",
    "data/one": "x",
    "data/exec.sh": "#!/bin/sh\necho hi\n",
    "data/sub/deep/file": "deep\n",
    "data/dir-to-opaque/x": "x\n",
    "data/dir-to-opaque/y": "y\n",
    "data/to-delete": "bye\n",
  };
  for (
    const [name, n] of [["s64", 64], ["s65", 65], ["s4095", 4095], ["s4096", 4096], ["s64k", 65536], [
      "s1m",
      1 << 20,
    ]] as const
  ) {
    dataFiles[`data/${name}`] = gen(n, name);
  }
  await writeFiles(base, dataFiles);
  await Deno.chmod(`${base}/data/exec.sh`, 0o755);
  await Deno.mkdir(`${base}/bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${base}/bin/busybox`);
  await Deno.chmod(`${base}/bin/busybox`, 0o755);
  await Deno.symlink("busybox", `${base}/bin/sh`);
  await Deno.link(`${base}/data/s64k`, `${base}/data/hardlink-to-s64k`);
  await Deno.symlink("s4096", `${base}/data/symlink-to-s4096`);
  await Deno.symlink("/etc/hostname", `${base}/data/symlink-abs`);
  await Deno.writeTextFile(
    `${ctx}/base/Containerfile`,
    'FROM scratch\nCOPY rootfs/ /\nLABEL org.opencontainers.image.title=rig-base\nCMD ["/bin/busybox","ls","-la","/data"]\n',
  );

  await writeFiles(`${ctx}/layered/extra`, { "added.txt": "added\n" });
  await Deno.writeTextFile(
    `${ctx}/layered/Containerfile`,
    "FROM localhost/rig/base:1\n" +
      'RUN ["/bin/busybox","rm","/data/to-delete"]\n' +
      'RUN ["/bin/busybox","sh","-c","rm -rf /data/dir-to-opaque && mkdir /data/dir-to-opaque && echo new > /data/dir-to-opaque/z"]\n' +
      "COPY extra/ /data/extra/\nLABEL org.opencontainers.image.title=rig-layered\n",
  );

  const boot = `${ctx}/bootable/rootfs`;
  await writeFiles(boot, {
    "usr/lib/modules/6.1.0/vmlinuz": gen(2 << 20, "vmlinuz"),
    "usr/lib/modules/6.1.0/initramfs.img": gen(1 << 20, "initramfs"),
    "usr/lib/modules/6.1.0/modules.dep": "",
    "usr/lib/os-release": 'NAME="Rig OS"\nID=rigos\nVERSION_ID=1\nPRETTY_NAME="Rig OS 1 (test image)"\n',
  });
  await Deno.mkdir(`${boot}/etc`);
  await Deno.symlink("../usr/lib/os-release", `${boot}/etc/os-release`);
  await Deno.copyFile("/bin/busybox", `${boot}/usr/bin/busybox`).catch(async () => {
    await Deno.mkdir(`${boot}/usr/bin`, { recursive: true });
    await Deno.copyFile("/bin/busybox", `${boot}/usr/bin/busybox`);
  });
  await Deno.chmod(`${boot}/usr/bin/busybox`, 0o755);
  await Deno.symlink("usr/bin", `${boot}/bin`);
  await Deno.mkdir(`${boot}/boot`);
  await Deno.mkdir(`${boot}/sysroot`);
  await Deno.writeTextFile(
    `${ctx}/bootable/Containerfile`,
    "FROM scratch\nCOPY rootfs/ /\nLABEL containers.bootc=1\nLABEL ostree.bootable=1\n" +
      "LABEL org.opencontainers.image.title=rig-bootable\n",
  );

  await writeFiles(`${ctx}/arm64`, { "arch.txt": "arm64\n" });
  await Deno.writeTextFile(`${ctx}/arm64/Containerfile`, "FROM scratch\nCOPY arch.txt /arch.txt\n");
}

/** The manifest digest the registry reports for `ref` (`host/repo:tag`). */
export async function manifestDigest(ref: string): Promise<string> {
  const slash = ref.indexOf("/");
  const colon = ref.lastIndexOf(":");
  const res = await fetch(
    `http://${ref.slice(0, slash)}/v2/${ref.slice(slash + 1, colon)}/manifests/${ref.slice(colon + 1)}`,
    {
      method: "HEAD",
      headers: {
        accept: "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
          "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
      },
    },
  );
  await res.body?.cancel();
  const d = res.headers.get("docker-content-digest");
  if (!res.ok || !d) throw new Error(`no manifest digest for ${ref} (HTTP ${res.status})`);
  return d;
}

/**
 * Builds the test images of test-rig.md §2.3 (reproducibly: `--timestamp 1700000000`) in a build
 * storage under `<dir>/build-storage` and pushes them to the plain-http registry `host`. Takes a
 * few seconds; the build storage's overlay mounts are cleaned up before it returns.
 */
export async function pushTestImages(dir: string, host: string): Promise<TestImages> {
  const ctx = `${dir}/build-context`;
  await makeContexts(ctx);
  // containers-storage allows at most 50 characters of runroot: keep it short and outside `dir`.
  const runroot = await Deno.makeTempDir({ prefix: "bcfs-run-" });
  const storage = ["--root", `${dir}/build-storage`, "--runroot", runroot, "--storage-driver", "overlay"];
  const podman = (...args: string[]) => run("podman", [...storage, ...args]);
  const build = (name: string, ...extra: string[]) =>
    podman(
      "build",
      "--timestamp",
      "1700000000",
      "--isolation=chroot",
      "--network=host",
      ...extra,
      "-t",
      `localhost/rig/${name}`,
      `${ctx}/${name.split(":")[0]}`,
    );
  const push = (name: string, tag = name, ...extra: string[]) =>
    podman("push", "--tls-verify=false", ...extra, `localhost/rig/${name}`, `docker://${host}/rig/${tag}`);
  try {
    await build("base:1");
    await build("layered:1");
    await build("bootable:1");
    await build("arm64:1", "--arch", "arm64", "--os", "linux");
    await push("base:1");
    await push("base:1", "base:docker", "--format", "v2s2");
    await push("layered:1");
    await push("bootable:1");
    await push("arm64:1");
    await podman("manifest", "create", "localhost/rig/multi:1");
    for (const member of ["base:1", "arm64:1"]) {
      await podman("manifest", "add", "--tls-verify=false", "localhost/rig/multi:1", `docker://${host}/rig/${member}`);
    }
    await podman(
      "manifest",
      "push",
      "--all",
      "--tls-verify=false",
      "localhost/rig/multi:1",
      `docker://${host}/rig/multi:1`,
    );
  } finally {
    cleanupOverlayMounts(`${dir}/build-storage`);
    await Deno.remove(runroot, { recursive: true });
  }
  const images = {
    base: `${host}/rig/base:1`,
    baseDocker: `${host}/rig/base:docker`,
    layered: `${host}/rig/layered:1`,
    bootable: `${host}/rig/bootable:1`,
    multi: `${host}/rig/multi:1`,
    arm64: `${host}/rig/arm64:1`,
  };
  const digests: Record<string, string> = {};
  for (const ref of Object.values(images)) digests[ref] = await manifestDigest(ref);
  return { ...images, digests };
}

/** Options of {@link startPodman}. */
export interface RigPodmanOptions {
  /** Storage driver (default overlay); each driver gets its own root `<dir>/storage-<driver>`. */
  driver?: "overlay" | "vfs";
  /** A registry to mark insecure in the service's registries.conf (test-rig.md §2.2). */
  insecureRegistry?: string;
}

/** A running libpod service of the rig. */
export interface RigPodman extends AsyncDisposable {
  readonly service: PodmanService;
  /** The storage root (`--root`). */
  readonly root: string;
}

/**
 * Starts a podman libpod service with its own storage root `<dir>/storage-<driver>`, socket
 * `<dir>/podman-<driver>.sock` and log `<dir>/podman-<driver>.log`; the runroot is a short temp
 * directory (podman allows 50 characters), removed on disposal.
 */
export async function startPodman(dir: string, options: RigPodmanOptions = {}): Promise<RigPodman> {
  const driver = options.driver ?? "overlay";
  await Deno.mkdir(dir, { recursive: true });
  let registriesConf: string | undefined;
  if (options.insecureRegistry) {
    registriesConf = `${dir}/registries-${driver}.conf`;
    await Deno.writeTextFile(
      registriesConf,
      `unqualified-search-registries = []\n\n[[registry]]\nlocation = "${options.insecureRegistry}"\ninsecure = true\n`,
    );
  }
  const root = `${dir}/storage-${driver}`;
  const runroot = await Deno.makeTempDir({ prefix: "bcfs-run-" });
  let service: PodmanService;
  try {
    service = await PodmanService.start({
      root,
      runroot,
      socketPath: `${dir}/podman-${driver}.sock`,
      storageDriver: driver,
      registriesConf,
      logFile: `${dir}/podman-${driver}.log`,
    });
  } catch (e) {
    await Deno.remove(runroot, { recursive: true });
    throw e;
  }
  return {
    service,
    root,
    async [Symbol.asyncDispose]() {
      await service.stop();
      await Deno.remove(runroot, { recursive: true });
    },
  };
}

/**
 * Uploads `bytes` as a blob of `host/repository` (monolithic POST + PUT) and returns its
 * descriptor, for tests that need blobs of a chosen size.
 */
export async function uploadBlob(
  host: string,
  repository: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const start = await fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  await start.body?.cancel();
  const location = start.headers.get("location");
  if (start.status !== 202 || !location) throw new Error(`starting a blob upload to ${host}: HTTP ${start.status}`);
  const url = new URL(location, `http://${host}`);
  url.searchParams.set("digest", digest);
  const put = await fetch(url, {
    method: "PUT",
    body: bytes,
    headers: { "content-type": "application/octet-stream" },
  });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`uploading blob ${digest} to ${host}: HTTP ${put.status}`);
  return { digest, size: bytes.length };
}
