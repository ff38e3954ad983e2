import { X509Certificate } from "node:crypto";
import { generate } from "selfsigned";

export interface TestCertificate {
  cert: string;
  key: string;
  /** SHA-256 fingerprint as node:tls reports it (`AA:BB:…`). */
  fingerprint256: string;
}

/**
 * A self-signed certificate for 127.0.0.1/localhost (and `moreNames`, e.g. more XMPP domains), made in the
 * test (no committed key material).
 */
export async function makeCertificate(
  commonName = "localhost",
  moreNames: string[] = [],
): Promise<TestCertificate> {
  const pems = await generate([{ name: "commonName", value: commonName }], {
    keySize: 2048,
    algorithm: "sha256",
    extensions: [
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          ...moreNames.filter((n) => n !== "localhost").map((value) => ({ type: 2 as const, value })),
          { type: 7, ip: "127.0.0.1" },
        ],
      },
    ],
  });
  return {
    cert: pems.cert,
    key: pems.private,
    fingerprint256: new X509Certificate(pems.cert).fingerprint256,
  };
}
