/**
 * JIDs as the services see them (RFC 7622): `node@domain`. MongooseIM sends both parts already lower-cased;
 * the user part may carry XEP-0106 escapes (`\40` for `@`), which are kept as they are.
 */
export interface Jid {
  node: string;
  domain: string;
}

const FORBIDDEN_IN_NODE = /[\s"&'/:<>@]/;
// RFC 6122 nodeprep prohibits control characters; PostgreSQL text cannot hold NUL at all
const isControl = (c: string) => {
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
};

export function validateNode(node: string): string | undefined {
  if (node.length === 0) return "the user part is empty";
  if (Buffer.byteLength(node) > 1023) return "the user part is longer than 1023 bytes";
  if (FORBIDDEN_IN_NODE.test(node)) return `the user part may not contain spaces or any of " & ' / : < > @`;
  if ([...node].some(isControl)) return "the user part may not contain control characters";
  return undefined;
}

/**
 * A user part as an account is named: a valid node, and never a phone number's second spelling. `+306912345678`
 * and `306912345678` would be two accounts of one number, so the `+` is refused wherever a user is named
 * (logins, registration, the CLI); a number in a request's body field may carry it and loses it there.
 */
export function validateUserPart(node: string): string | undefined {
  if (node.startsWith("+")) {
    return "the user part may not start with +: write a phone number without it (306912345678)";
  }
  return validateNode(node);
}

/** Parses `node@domain`; throws an Error whose message says what is wrong. */
export function parseJid(text: string): Jid {
  const at = text.lastIndexOf("@");
  if (at <= 0 || at === text.length - 1) throw new Error(`"${text}" is not a JID: write it as user@domain`);
  const node = text.slice(0, at).toLowerCase();
  const domain = text.slice(at + 1).toLowerCase();
  const problem = validateUserPart(node);
  if (problem) throw new Error(`"${text}": ${problem}`);
  return { node, domain };
}
