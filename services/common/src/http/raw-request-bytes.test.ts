import { describe, expect, it } from "vitest";
import { RequestLineEncoder } from "./raw-request-bytes.ts";

const feed = (chunks: (string | Buffer)[]) => {
  const e = new RequestLineEncoder();
  return Buffer.concat(chunks.map((c) => e.push(typeof c === "string" ? Buffer.from(c, "latin1") : c)));
};

describe("request line encoder", () => {
  const raw = Buffer.concat([
    Buffer.from("GET /a?user=j"),
    Buffer.from("ö", "utf8"),
    Buffer.from(" HTTP/1.1\r\nHost: x\r\n\r\n"),
  ]);

  it("percent-encodes raw bytes of the request line, even when the head arrives byte by byte", () => {
    const whole = feed([raw]).toString("latin1");
    expect(whole).toBe("GET /a?user=j%C3%B6 HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(feed([...raw].map((b) => Buffer.of(b))).toString("latin1")).toBe(whole);
  });

  it("leaves bodies alone (high bytes, blank lines inside), then encodes the next request on the connection", () => {
    const body = Buffer.concat([Buffer.from("pass=\u00ff\r\n\r\nGET /x\u00e9", "latin1")]);
    const post = Buffer.concat([
      Buffer.from(`POST /p HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`),
      body,
    ]);
    const out = feed([post.subarray(0, 30), post.subarray(30), raw]);
    expect(out.subarray(0, post.length).equals(post)).toBe(true);
    expect(out.subarray(post.length).toString("latin1")).toBe(
      "GET /a?user=j%C3%B6 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
  });

  it("passes a chunked request and everything after it through as it is", () => {
    const chunked =
      "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\u00ff\u00ff\u00ff\r\n0\r\n\r\n";
    expect(feed([chunked, raw]).toString("latin1")).toBe(chunked + raw.toString("latin1"));
  });
});
