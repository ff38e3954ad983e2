import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { StartupError } from "../errors.ts";
import { fromRoot } from "../paths.ts";

export interface TlsPaths {
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
}

/** Reads and checks the PEM files (key matches cert); throws a StartupError naming the file and the fix. */
export function readTls(paths: TlsPaths): SecureContextOptions {
  const read = (label: string, p: string): Buffer => {
    try {
      return readFileSync(fromRoot(p));
    } catch (err) {
      throw new StartupError(
        `TLS ${label} ${p}: cannot be read (${(err as NodeJS.ErrnoException).code}); create the ssl/ links ` +
          '(docs/operations.md, "Certificates") or remove the tls paths from the config',
      );
    }
  };
  const options: SecureContextOptions = {
    cert: read("certificate", paths.cert as string),
    key: read("key", paths.key as string),
    ...(paths.ca ? { ca: read("CA", paths.ca) } : {}),
  };
  try {
    createSecureContext(options);
  } catch (err) {
    throw new StartupError(
      `TLS files ${paths.cert} / ${paths.key} unusable (${(err as Error).message}); check that the key belongs to the certificate`,
    );
  }
  return options;
}

/**
 * Calls `onChange` once the files stopped changing. Polling (fs.watchFile) follows the ssl/ symlinks and
 * sees a renewal that replaces the target file, which inotify watches on the old inode would miss.
 */
export function watchTls(paths: TlsPaths, onChange: () => void, intervalMs = 2000): () => void {
  const files = [paths.cert, paths.key, paths.ca].filter((p): p is string => !!p).map(fromRoot);
  let timer: NodeJS.Timeout | undefined;
  const listener = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, intervalMs);
  };
  for (const f of files) watchFile(f, { interval: intervalMs, persistent: false }, listener);
  return () => {
    clearTimeout(timer);
    for (const f of files) unwatchFile(f, listener);
  };
}
