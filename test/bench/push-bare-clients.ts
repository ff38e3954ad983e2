import http2 from "node:http2";
import https from "node:https";
import { FCM_HOST } from "../support/fake-fcm.ts";

/**
 * The baselines of the push fan-out benchmarks: the least a client must do to send the project's requests.
 * Headers, body and credentials are the ones the project's senders sent (recorded by the fakes during the
 * set-up), so both sides put the same bytes on the wire; only the client code differs.
 */

export interface BareClient {
  /** One notification to `token`; rejects unless the provider answered 200. */
  send(token: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * APNs: one `node:http2` session (as the sender keeps one per environment), one stream a notification,
 * `POST /3/device/<token>` with the sender's headers (its JWT included) and its payload.
 */
export function bareApnsClient(o: {
  port: number;
  ca: string;
  /** the sender's regular headers: apns-topic, apns-push-type, apns-priority, authorization… */
  headers: Record<string, string>;
  body: string;
}): BareClient {
  const session = http2.connect(`https://127.0.0.1:${o.port}`, { ca: o.ca });
  let sessionError: Error | undefined;
  session.on("error", (err) => {
    sessionError = err;
  });
  return {
    send(token) {
      return new Promise<void>((resolve, reject) => {
        if (sessionError) return reject(sessionError);
        const req = session.request({
          ":method": "POST",
          ":scheme": "https",
          ":authority": "127.0.0.1",
          ":path": `/3/device/${token}`,
          ...o.headers,
        });
        let status = 0;
        req.on("response", (h) => {
          status = Number(h[":status"]);
        });
        req.on("error", reject);
        req.resume();
        req.on("end", () => (status === 200 ? resolve() : reject(new Error(`bare APNs: status ${status}`))));
        req.end(o.body);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (session.closed || session.destroyed) return resolve();
        session.close(() => resolve());
      }),
  };
}

/** Headers the agent or the request sets itself. */
const PER_CONNECTION = new Set(["host", "connection", "content-length", "transfer-encoding"]);

/**
 * FCM: `node:https` with a keep-alive agent (as the sender's own in production),
 * `POST /v1/projects/<project>/messages:send` of the sender's JSON with the token swapped in, its headers
 * (its Bearer access token included).
 */
export function bareFcmClient(o: {
  port: number;
  ca: string;
  projectId: string;
  headers: Record<string, string>;
  /** The sender's request body, `{ message: { token, … } }`. */
  body: { message: Record<string, unknown> };
}): BareClient {
  const agent = new https.Agent({ keepAlive: true, ca: o.ca });
  const headers = Object.fromEntries(
    Object.entries(o.headers).filter(([name]) => !PER_CONNECTION.has(name.toLowerCase())),
  );
  const path = `/v1/projects/${encodeURIComponent(o.projectId)}/messages:send`;
  return {
    send(token) {
      const body = JSON.stringify({ message: { ...o.body.message, token } });
      return new Promise<void>((resolve, reject) => {
        const req = https.request(
          {
            host: "127.0.0.1",
            port: o.port,
            servername: FCM_HOST,
            method: "POST",
            path,
            agent,
            headers: { ...headers, host: FCM_HOST, "content-length": Buffer.byteLength(body) },
          },
          (res) => {
            res.resume();
            res.on("error", reject);
            res.on("end", () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`bare FCM: status ${res.statusCode}`)),
            );
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    },
    async close() {
      agent.destroy();
    },
  };
}
