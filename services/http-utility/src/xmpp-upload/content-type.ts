/**
 * The type an XEP-0363 upload is served with: the uploader's declared type, reduced to a plain `type/subtype`
 * of a registered top-level type (RFC 6838 §4.2 names), lower case, without parameters; anything else is
 * `application/octet-stream`. The bytes are never looked at: clients upload OMEMO-encrypted blobs (XEP-0454)
 * whose content is no type at all. Which of these a browser may show inline is the downloads' decision
 * (attachments/downloads.ts: a short list of image and video types; everything else is `attachment`).
 */

const TYPE =
  /^(application|audio|font|image|message|model|multipart|text|video)\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

export const FALLBACK_TYPE = "application/octet-stream";

export function sanitiseContentType(declared: string | undefined): string {
  const plain = (declared ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  return TYPE.test(plain) ? plain : FALLBACK_TYPE;
}
