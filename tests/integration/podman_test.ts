/**
 * The transient podman service and libpod client against real podman 4.3.1: pulls from the rig
 * registry into temporary storage roots (overlay and vfs), inspect cross-checked with the
 * registry's own config, and the service always stopped (success, failure, killed service,
 * podman missing from PATH).
 */
import assert from "node:assert/strict";
import { type PodmanServiceOptions, type PullEvent, withPodmanService } from "../../lib/podman/mod.ts";
import { PodmanService } from "../../lib/podman/mod.ts";
import { RegistryClient } from "../../lib/registry/mod.ts";
import { requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { pushTestImages, startPodman, startRegistry } from "../helpers/rig.ts";

/** The mounts below `path` (from /proc/mounts). */
async function mountsBelow(path: string): Promise<string[]> {
  return (await Deno.readTextFile("/proc/mounts")).split("\n").map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${path}/`));
}

/** The config JSON of `ref`, read from the registry with our own client. */
async function registryConfig(ref: string): Promise<{ rootfs: { diff_ids: string[] } }> {
  const client = await RegistryClient.open(ref, { tlsVerify: false, authEnv: {} });
  const { manifest } = await client.resolveManifest();
  const config = JSON.parse(new TextDecoder().decode(manifest.bytes)).config;
  return JSON.parse(new TextDecoder().decode(await client.getBlobBytes(config)));
}

/** Asserts the service process is gone, its socket deleted and nothing is mounted under `root`. */
async function assertStopped(svc: PodmanService, root: string): Promise<void> {
  assert.equal(svc.running, false);
  assert.throws(() => Deno.readTextFileSync(`/proc/${svc.pid}/cmdline`), Deno.errors.NotFound);
  await assert.rejects(Deno.stat(svc.socketPath), Deno.errors.NotFound);
  await assert.rejects(Deno.stat(svc.tmpDir), Deno.errors.NotFound);
  assert.deepEqual(await mountsBelow(root), []);
}

Deno.test("podman service and libpod client against podman 4.3.1", async (t) => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-podman-it-");
  await using reg = await startRegistry(dir.path);
  const images = await pushTestImages(dir.path, reg.host);
  const runroot = await Deno.makeTempDir({ prefix: "bcfs-run-" });
  const options = (driver: "overlay" | "vfs"): PodmanServiceOptions => ({
    root: `${dir.path}/storage-${driver}`,
    runroot: `${runroot}/${driver}`,
    socketPath: `${dir.path}/podman-${driver}.sock`,
    storageDriver: driver,
    logFile: `${dir.path}/podman-${driver}.log`,
  });

  try {
    for (const driver of ["overlay", "vfs"] as const) {
      await t.step(`${driver}: pull rig/layered:1, progress, inspect, service stopped after`, async () => {
        const events: PullEvent[] = [];
        let svc: PodmanService | undefined;
        const inspected = await withPodmanService(options(driver), async (s) => {
          svc = s;
          assert.ok(s.running);
          assert.equal((await s.client.ping()).libpodApiVersion, "4.3.1");
          const result = await s.client.pull(images.layered, { tlsVerify: false, onProgress: (e) => events.push(e) });
          const image = await s.client.inspect(images.layered);
          assert.equal(image.id, result.id);
          assert.equal(await s.client.exists(images.layered), true);
          assert.equal(await s.client.exists(`${reg.host}/rig/nope:1`), false);
          return image;
        });
        await assertStopped(svc!, options(driver).root);
        const config = await registryConfig(images.layered);
        assert.deepEqual(inspected.layers, config.rootfs.diff_ids);
        assert.equal(inspected.digest, images.digests[images.layered]);
        assert.equal(inspected.graphDriver.name, driver);
        const manifest = JSON.parse(
          new TextDecoder().decode(
            (await (await RegistryClient.open(images.layered, { tlsVerify: false, authEnv: {} }))
              .getManifest()).bytes,
          ),
        );
        const blobs = events.flatMap((e) => (e.kind === "blob" ? [e.digest] : [])).sort();
        assert.deepEqual(blobs, manifest.layers.map((l: { digest: string }) => l.digest).sort());
        assert.deepEqual(events.filter((e) => e.kind === "config"), [{
          kind: "config",
          digest: manifest.config.digest,
        }]);
        // The stopped service's storage reads back with the podman CLI (same runroot: podman records it).
        const cli = await run("podman", [
          "--root",
          options(driver).root,
          "--runroot",
          options(driver).runroot,
          "--storage-driver",
          driver,
          "image",
          "inspect",
          "--format",
          "{{.Id}}",
          images.layered,
        ]);
        assert.equal(cli.trim(), inspected.id);
      });
    }

    await t.step(
      "rig service with an insecure registries.conf: pull without tlsVerify, arch=arm64 from the index",
      async () => {
        const pod = await startPodman(`${dir.path}/rig-podman`, { driver: "vfs", insecureRegistry: reg.host });
        try {
          const { id } = await pod.service.client.pull(images.base);
          assert.equal((await pod.service.client.inspect(id)).digest, images.digests[images.base]);
          // arch= picks the arm64 member of the index: its id is the arm64 config digest.
          const arm = await pod.service.client.pull(images.multi, { arch: "arm64" });
          const armClient = await RegistryClient.open(images.multi, { tlsVerify: false, authEnv: {} });
          const armManifest = (await armClient.resolveManifest({ os: "linux", architecture: "arm64" })).manifest;
          const armConfig = JSON.parse(new TextDecoder().decode(armManifest.bytes)).config.digest;
          assert.equal(`sha256:${arm.id}`, armConfig);
          assert.equal((await pod.service.client.inspect(arm.id)).architecture, "arm64");
        } finally {
          await pod[Symbol.asyncDispose]();
        }
        await assertStopped(pod.service, pod.root);
      },
    );

    await t.step("pull from an htpasswd registry: credentials header, auth file, wrong password", async () => {
      const creds = { username: "rig", password: "p+w/d?" };
      await using sec = await startRegistry(dir.path, { auth: "htpasswd", credentials: creds, dataDir: reg.dataDir });
      const ref = `${sec.host}/rig/base:1`;
      const authFile = `${dir.path}/podman-auth.json`;
      await Deno.writeTextFile(
        authFile,
        JSON.stringify({ auths: { [sec.host]: { auth: btoa(`rig:${creds.password}`) } } }),
      );
      await withPodmanService(options("overlay"), async (s) => {
        const withHeader = await s.client.pull(ref, { tlsVerify: false, credentials: creds });
        assert.equal(
          (await s.client.inspect(withHeader.id)).repoDigests.includes(
            `${sec.host}/rig/base@${images.digests[images.base]}`,
          ),
          true,
        );
        const withFile = await s.client.pull(ref, { tlsVerify: false, authFile });
        assert.equal(withFile.id, withHeader.id);
        await assert.rejects(
          s.client.pull(ref, { tlsVerify: false, credentials: { username: "rig", password: "wrong" } }),
          new RegExp(`^Error: podman pull ${ref}: .*unauthorized`),
        );
      });
    });

    await t.step("in-band pull errors are reported with the reference; the service still stops", async () => {
      let svc: PodmanService | undefined;
      await assert.rejects(
        withPodmanService(options("overlay"), async (s) => {
          svc = s;
          await s.client.pull(`${reg.host}/rig/nope:1`, { tlsVerify: false });
        }),
        {
          message: `podman pull ${reg.host}/rig/nope:1: initializing source docker://${reg.host}/rig/nope:1: ` +
            `reading manifest 1 in ${reg.host}/rig/nope: manifest unknown: manifest unknown`,
        },
      );
      await assertStopped(svc!, options("overlay").root);
    });

    await t.step("service killed during a pull: a clear error, and stop() still cleans up", async () => {
      // What a bootcfs killed with its service left: removed by the next start.
      // No process has the pid pid_max.
      const dead = Deno.readTextFileSync("/proc/sys/kernel/pid_max").trim();
      const stale = `${dir.path}/.storage-overlay-podman-tmp-${dead}-1`;
      Deno.mkdirSync(`${stale}/storage123`, { recursive: true });
      const svc = await PodmanService.start(options("overlay"));
      assert.throws(() => Deno.statSync(stale), Deno.errors.NotFound);
      try {
        let killed = false;
        await assert.rejects(
          svc.client.pull(images.bootable, {
            tlsVerify: false,
            onProgress: () => {
              if (!killed) {
                killed = true;
                Deno.kill(svc.pid, "SIGKILL");
              }
            },
          }),
          (e: Error) => {
            assert.match(
              e.message,
              new RegExp(
                `^podman pull ${images.bootable}: the podman service (connection broke during the pull|ended the reply without a result)`,
              ),
            );
            return true;
          },
        );
        assert.ok(killed);
        // podman staged the blob in its TMPDIR beside the root (not /var/tmp), and left it there.
        assert.notDeepEqual([...Deno.readDirSync(svc.tmpDir)], []);
      } finally {
        await svc.stop();
      }
      await assertStopped(svc, options("overlay").root);
    });

    await t.step("Ctrl-C (SIGINT) in a bootcfs process stops its service before exiting", async () => {
      const opts = options("overlay");
      const code = `import { PodmanService } from ${
        JSON.stringify(new URL("../../lib/podman/mod.ts", import.meta.url).href)
      };
        const svc = await PodmanService.start(${JSON.stringify(opts)});
        console.log(svc.pid);
        await new Promise(() => {});`;
      const child = new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped", stderr: "piped" })
        .spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const first = await reader.read();
      const servicePid = Number(first.value?.trim());
      assert.ok(servicePid > 0, `no service pid from the child: ${first.value}`);
      assert.match(Deno.readTextFileSync(`/proc/${servicePid}/cmdline`), /system.service/);
      child.kill("SIGINT");
      const status = await child.status;
      await reader.cancel();
      await child.stderr.cancel();
      assert.equal(status.code, 130);
      assert.throws(() => Deno.readTextFileSync(`/proc/${servicePid}/cmdline`), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(opts.socketPath!), Deno.errors.NotFound);
      assert.deepEqual(await mountsBelow(opts.root), []);
    });

    await t.step("podman missing from PATH: error names the Debian package", async () => {
      const path = Deno.env.get("PATH") ?? "";
      const empty = await Deno.makeTempDir();
      Deno.env.set("PATH", empty);
      try {
        await assert.rejects(PodmanService.start(options("overlay")), {
          message: 'starting the podman service: "podman" is not in PATH (install the Debian package podman)',
        });
      } finally {
        Deno.env.set("PATH", path);
        await Deno.remove(empty);
      }
    });

    await t.step("a service that exits at start reports podman's own message", async () => {
      // Two drivers on one root: containers-storage refuses, the service exits.
      await assert.rejects(
        PodmanService.start({ ...options("vfs"), root: options("overlay").root, readyTimeoutMs: 10_000 }),
        /the podman service exited with status \d+ before it was ready: .*overlay/,
      );
    });
  } finally {
    await Deno.remove(runroot, { recursive: true });
  }
});
