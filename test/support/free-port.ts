import { connect, createServer } from "node:net";

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * A port on 127.0.0.1 where a backend is down for as long as a test file needs it: held by a server that cuts
 * every connection at once. A port merely found free can be taken a moment later by another test file's
 * server (files run two at a time), which then answers in the dead backend's place (a CI run saw a "down"
 * authenticator answer false instead of failing).
 */
export async function deadPort(): Promise<{ port: number; close(): Promise<void> }> {
  const s = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.listen(0, "127.0.0.1", resolve);
  });
  return {
    port: (s.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => s.close(() => resolve())),
  };
}

/**
 * Resolves once something accepts connections on 127.0.0.1:`port`; throws what `exited` says once the daemon
 * has gone, or after `until` (a Date.now() time) that `name` is not listening.
 */
export async function listening(
  port: number,
  until: number,
  exited: () => string | undefined,
  name: string,
): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    const why = exited();
    if (why) throw new Error(why);
    if (Date.now() > until) throw new Error(`${name} not listening on ${port} after 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
