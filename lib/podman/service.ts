/**
 * A transient `podman system service` against bootcfs's own containers-storage root, as bootc
 * starts one (bootc-layout.md §5.1, test-rig.md §2.2): started on demand, always stopped, and its
 * overlay leftovers unmounted.
 *
 * @module
 */
import { basename, dirname, resolve } from "node:path";
import { MNT_DETACH, umount2 } from "../../ffi/libc.ts";
import { LibpodClient } from "./client.ts";
import { removeIfExists } from "../runtime/files.ts";

/** How to start the service. */
export interface PodmanServiceOptions {
  /** containers-storage graph root (`--root`). */
  root: string;
  /** Run root (`--runroot`): locks and mount state; under `/run` normally; at most 50 characters. */
  runroot: string;
  /** Socket path (default `<runroot>/podman.sock`). A stale file there is removed. */
  socketPath?: string;
  /** `overlay` (default) or `vfs`; one root holds only one driver. */
  storageDriver?: "overlay" | "vfs";
  /** The podman binary (default `podman` from PATH). */
  podman?: string;
  /** registries.conf for the service (`CONTAINERS_REGISTRIES_CONF`), e.g. to mark a registry insecure. */
  registriesConf?: string;
  /** Where the service's stderr goes (appended); by default only its tail is kept for errors. */
  logFile?: string;
  /** How long to wait for `/_ping` (default 15 s). */
  readyTimeoutMs?: number;
  /**
   * Start podman the way bootc does (bootc-layout.md §5.1), so that the store's database records
   * bootc's paths and either tool can open a store the other made: `root` bind-mounted at
   * {@link BOOTC_STORAGE} in a mount namespace of podman's own and given as `--root`, `runroot`
   * open as fd 3 and given as `--runroot /proc/self/fd/3`.
   */
  bootcPaths?: boolean;
}

/** Where podman sees a bootc store: the `--root` that bootc's podman database records. */
export const BOOTC_STORAGE = "/run/bootc/storage";
/** The `--runroot` that bootc's podman database records: the run root, open as fd 3. */
export const BOOTC_RUNROOT = "/proc/self/fd/3";

const STDERR_TAIL = 4096;
/** containers-storage refuses longer run roots ("the specified runroot is longer than 50 characters"). */
const MAX_RUNROOT = 50;

/** Services started by this process, stopped on Ctrl-C. */
const live = new Set<PodmanService>();
let sigintInstalled = false;

function onSigint(): void {
  const stops = [...live].map((s) => s.stop().catch(() => {}));
  Promise.all(stops).finally(() => Deno.exit(130));
}

function track(service: PodmanService, add: boolean): void {
  if (add) live.add(service);
  else live.delete(service);
  if (live.size > 0 && !sigintInstalled) {
    Deno.addSignalListener("SIGINT", onSigint);
    sigintInstalled = true;
  } else if (live.size === 0 && sigintInstalled) {
    Deno.removeSignalListener("SIGINT", onSigint);
    sigintInstalled = false;
  }
}

/** The NUL-separated command line of `pid`, or undefined if no such process. */
function cmdline(pid: number): string[] | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  } catch {
    return undefined;
  }
}

/** True if `pid` is a `podman … system service` for `socketPath`. */
function isOurService(pid: number, socketPath: string): boolean {
  const args = cmdline(pid);
  if (!args) return false;
  const text = args.join(" ");
  return text.includes("system service") && text.includes(socketPath);
}

/**
 * True if `program` is an executable file: a path, or a name in one of `$PATH`'s directories.
 * Checked before the start, since with bootc's paths a missing podman only shows as sh's error.
 */
function executable(program: string): boolean {
  const dirs = program.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":").map((d) => `${d || "."}/`);
  for (const dir of dirs) {
    try {
      const st = Deno.statSync(`${dir}${program}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return true;
    } catch { /* not there */ }
  }
  return false;
}

let tmpDirs = 0;

/**
 * A new directory for the service's big temporary files (podman stages each blob there before
 * applying it; `/var/tmp` by default): beside the storage root, so blobs land on the target's
 * filesystem rather than on a host `/var/tmp` that may be a tmpfs (an installer, an initramfs),
 * and removed with the service, also when podman was killed and could not. Named for this
 * process, so that ones left by a bootcfs that died are recognised and removed.
 */
async function makeServiceTmpDir(root: string): Promise<string> {
  const parent = dirname(root);
  const stem = `.${basename(root)}-podman-tmp-`;
  for await (const e of Deno.readDir(parent)) {
    const pid = e.name.startsWith(stem) ? Number(e.name.slice(stem.length).split("-")[0]) : NaN;
    if (pid > 0 && pid !== Deno.pid && cmdline(pid) === undefined) {
      await Deno.remove(`${parent}/${e.name}`, { recursive: true });
    }
  }
  const dir = `${parent}/${stem}${Deno.pid}-${++tmpDirs}`;
  await Deno.mkdir(dir, { mode: 0o700 });
  return dir;
}

/** Makes the directories that {@link podmanCommand} with these arguments needs. */
export async function makePodmanDirs(root: string, runroot: string, bootcPaths: boolean): Promise<void> {
  await Deno.mkdir(root, { recursive: true });
  await Deno.mkdir(runroot, { recursive: true, mode: 0o700 });
  if (bootcPaths) await Deno.mkdir(BOOTC_STORAGE, { recursive: true });
}

/**
 * The program and arguments that run `podman ARGS` against `root` and `runroot`: directly, or with
 * bootc's paths. There fd 3 is opened before the bind mount hides {@link BOOTC_STORAGE} (which must
 * exist), and the namespace keeps the bind mount, and podman's overlay mounts, out of everyone
 * else's sight.
 */
export function podmanCommand(
  podman: string,
  root: string,
  runroot: string,
  bootcPaths: boolean,
  args: string[],
): [string, string[]] {
  if (!bootcPaths) return [podman, ["--root", root, "--runroot", runroot, ...args]];
  const script = 'exec 3<"$1" && mount --bind "$2" "$3" && shift 3 && exec "$@"';
  return ["unshare", [
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    script,
    "sh",
    runroot,
    root,
    BOOTC_STORAGE,
    podman,
    "--root",
    BOOTC_STORAGE,
    "--runroot",
    BOOTC_RUNROOT,
    ...args,
  ]];
}

/** Decodes the octal escapes of a `/proc/mounts` field (`\040` = space). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/** True if a process other than this one has `root` on its command line (it may still use the store). */
function rootInUse(root: string): boolean {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    const args = cmdline(Number(e.name));
    if (args?.some((a) => a === root || a === `--root=${root}`)) return true;
  }
  return false;
}

/**
 * Unmounts what containers-storage's overlay driver leaves behind under `root` after its process
 * was stopped (`<root>/overlay` bind-mounted onto itself, test-rig.md §2.2), deepest first. Does
 * nothing while another process still names `root` on its command line.
 */
export function cleanupOverlayMounts(root: string): void {
  const abs = resolve(root);
  if (rootInUse(abs)) return;
  for (let round = 0; round < 16; round++) {
    const targets = Deno.readTextFileSync("/proc/mounts").split("\n")
      .map((l) => unescapeMountField(l.split(" ")[1] ?? ""))
      .filter((m) => m.startsWith(`${abs}/`) && (m.endsWith("/overlay") || m.endsWith("/merged")))
      .sort((a, b) => b.length - a.length);
    if (targets.length === 0) return;
    for (const t of targets) {
      try {
        umount2(t, 0);
      } catch {
        umount2(t, MNT_DETACH);
      }
    }
  }
}

/**
 * A running `podman system service`. Start it with {@link PodmanService.start} and always
 * {@link PodmanService.stop} it (or use {@link withPodmanService}); Ctrl-C stops every live
 * service before the process exits.
 *
 * @example
 * ```ts
 * const svc = await PodmanService.start({ root: "/var/lib/bootcfs/storage", runroot: "/run/bootcfs/storage" });
 * try {
 *   await svc.client.pull("quay.io/fedora/fedora-bootc:42");
 * } finally {
 *   await svc.stop();
 * }
 * ```
 */
export class PodmanService {
  /** The socket the service listens on. */
  readonly socketPath: string;
  /** The storage root it serves. */
  readonly root: string;
  /** The service's `TMPDIR`, removed when it stops. */
  readonly tmpDir: string;
  /** Process id of the service. */
  readonly pid: number;
  /** A libpod client on the socket (closed by {@link PodmanService.stop}). */
  readonly client: LibpodClient;
  #child: Deno.ChildProcess;
  #stderr: Promise<string>;
  #stopped = false;

  private constructor(
    socketPath: string,
    root: string,
    tmpDir: string,
    child: Deno.ChildProcess,
    stderr: Promise<string>,
  ) {
    this.socketPath = socketPath;
    this.root = root;
    this.tmpDir = tmpDir;
    this.pid = child.pid;
    this.#child = child;
    this.#stderr = stderr;
    this.client = new LibpodClient(socketPath);
  }

  /**
   * Starts the service and waits until `/_ping` answers. Throws if podman is not installed, exits
   * early (with its stderr), or does not answer in time; nothing is left running on failure.
   */
  static async start(options: PodmanServiceOptions): Promise<PodmanService> {
    const root = resolve(options.root);
    const runroot = resolve(options.runroot);
    const socketPath = resolve(options.socketPath ?? `${runroot}/podman.sock`);
    const podman = options.podman ?? "podman";
    const bootcPaths = options.bootcPaths ?? false;
    if (!bootcPaths && runroot.length > MAX_RUNROOT) {
      throw new Error(
        `starting the podman service: runroot ${runroot} is longer than the ${MAX_RUNROOT} characters podman allows`,
      );
    }
    if (!executable(podman)) {
      throw new Error(
        podman.includes("/")
          ? `starting the podman service: ${podman} does not exist`
          : `starting the podman service: "${podman}" is not in PATH (install the Debian package podman)`,
      );
    }
    await makePodmanDirs(root, runroot, bootcPaths);
    await Deno.mkdir(dirname(socketPath), { recursive: true });
    removeIfExists(socketPath);
    const tmpDir = await makeServiceTmpDir(root);
    const env: Record<string, string> = { TMPDIR: tmpDir };
    if (options.registriesConf) env.CONTAINERS_REGISTRIES_CONF = resolve(options.registriesConf);
    const [cmd, args] = podmanCommand(podman, root, runroot, bootcPaths, [
      "--storage-driver",
      options.storageDriver ?? "overlay",
      "system",
      "service",
      "--time=0",
      `unix://${socketPath}`,
    ]);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, { args, env, stdin: "null", stdout: "null", stderr: "piped", detached: true })
        .spawn();
    } catch (e) {
      await Deno.remove(tmpDir, { recursive: true });
      throw new Error(`starting the podman service: ${cmd}: ${(e as Error).message}`);
    }
    const stderr = collectStderr(child.stderr, options.logFile);
    const service = new PodmanService(socketPath, root, tmpDir, child, stderr);
    track(service, true);
    try {
      await service.#waitReady(options.readyTimeoutMs ?? 15_000);
    } catch (e) {
      await service.stop();
      throw e;
    }
    return service;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    let exited: Deno.CommandStatus | undefined;
    this.#child.status.then((s) => exited = s);
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (exited) {
        const tail = (await this.#stderr).trim().split("\n").slice(-3).join(" | ");
        throw new Error(`the podman service exited with status ${exited.code} before it was ready: ${tail}`);
      }
      try {
        await Deno.stat(this.socketPath);
        await this.client.ping();
        return;
      } catch (e) {
        lastError = e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the podman service did not answer on ${this.socketPath} within ${timeoutMs} ms`, {
      cause: lastError,
    });
  }

  /** True while the service process has not exited. */
  get running(): boolean {
    return !this.#stopped && isOurService(this.pid, this.socketPath);
  }

  /**
   * Stops the service: SIGTERM (only if the PID is still a `system service` on our socket), up to
   * 10 s grace, then SIGKILL; removes the socket and the temporary directory and unmounts overlay
   * leftovers under the root.
   * Safe to call more than once.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.client.close();
    try {
      if (isOurService(this.pid, this.socketPath)) {
        try {
          Deno.kill(this.pid, "SIGTERM");
        } catch {
          // Exited in between.
        }
        const grace = new Promise<"timeout">((r) => {
          const t = setTimeout(() => r("timeout"), 10_000);
          this.#child.status.finally(() => clearTimeout(t));
        });
        if (await Promise.race([this.#child.status, grace]) === "timeout") {
          try {
            Deno.kill(this.pid, "SIGKILL");
          } catch {
            // Exited in between.
          }
        }
      }
      await this.#child.status;
      await this.#stderr;
      removeIfExists(this.socketPath);
      removeIfExists(this.tmpDir, { recursive: true });
      cleanupOverlayMounts(this.root);
    } finally {
      track(this, false);
    }
  }

  /** The last few KiB of the service's stderr (complete once the service has stopped). */
  stderrTail(): Promise<string> {
    return this.#stderr;
  }
}

/** Reads the service's stderr to its end, keeping the tail and appending everything to `logFile`. */
async function collectStderr(stream: ReadableStream<Uint8Array>, logFile?: string): Promise<string> {
  const log = logFile ? await Deno.open(logFile, { append: true, create: true }) : undefined;
  let tail = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) {
      if (log) await log.write(chunk);
      tail = (tail + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL);
    }
  } finally {
    log?.close();
  }
  return tail;
}

/**
 * Runs `fn` with a started service and stops it afterwards, whether `fn` succeeds, throws, or
 * the user presses Ctrl-C.
 *
 * @example
 * ```ts
 * const id = await withPodmanService({ root, runroot }, (svc) => svc.client.pull(ref).then((r) => r.id));
 * ```
 */
export async function withPodmanService<T>(
  options: PodmanServiceOptions,
  fn: (service: PodmanService) => Promise<T>,
): Promise<T> {
  const service = await PodmanService.start(options);
  try {
    return await fn(service);
  } finally {
    await service.stop();
  }
}
