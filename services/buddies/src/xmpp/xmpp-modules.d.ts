// Types for the xmpp.js 0.14 modules that ship without them and that xmpp/connection.ts assembles.
declare module "@xmpp/tcp" {
  export default function tcp(deps: { entity: unknown }): void;
}
declare module "@xmpp/tls/lib/Connection.js" {
  const ConnectionTLS: new (...args: never[]) => object;
  export default ConnectionTLS;
}
declare module "@xmpp/starttls/starttls.js" {
  import type { Socket } from "node:net";
  export function canUpgrade(socket: unknown): boolean;
  export function upgrade(socket: unknown, options: import("node:tls").ConnectionOptions): Promise<Socket>;
}
declare module "@xmpp/sasl-scram-sha-1" {
  export default function scramsha1(factory: unknown): void;
}
declare module "@xmpp/sasl-plain" {
  export default function plain(factory: unknown): void;
}
declare module "saslmechanisms" {
  export default class SASLFactory {
    use(mech: unknown): this;
  }
}
