import { BlockList, isIP } from "node:net";

/** Addresses and CIDR blocks (IPv4 and IPv6); loopback is always included. */
export function createAllowList(entries: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  list.addSubnet("127.0.0.0", 8, "ipv4");
  list.addAddress("::1", "ipv6");
  for (const entry of entries) {
    const [addr = "", bits] = entry.split("/");
    const type = isIP(addr) === 6 ? "ipv6" : "ipv4";
    if (isIP(addr) === 0) throw new Error(`"${entry}" is not an IP address or CIDR block`);
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return (address) => {
    if (!address) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    const addr = mapped ?? address;
    return list.check(addr, isIP(addr) === 6 ? "ipv6" : "ipv4");
  };
}
