import { createHash } from "node:crypto";
import { renderSvg, svgRenderer } from "./images.ts";

/**
 * Generated avatars in the style of GitHub's identicons: a 5×5 grid, mirrored left to right, of cells
 * switched on by bits of the SHA-256 of the name, in one colour taken from the same hash, on a light
 * background with a margin of about half a cell. Drawn as an SVG with cells on whole pixels (crisp edges,
 * two colours) and rendered by sharp: no fonts, no network, the same bytes for the same inputs.
 */

/** Bump when the drawing changes: it is part of the ETag. */
export const IDENTICON_VERSION = 1;

export type IdenticonFormat = "png" | "webp";

const BACKGROUND = "#f0f0f0";
const MIN_SIZE = 16;
const MAX_SIZE = 4096;

/** A node, a JID or an e-mail address, whatever its case and surrounding blanks. */
const normalised = (name: string) => name.trim().normalize("NFC").toLowerCase();

export async function identicon(name: string, size: number, format: IdenticonFormat): Promise<Buffer> {
  if (!Number.isInteger(size) || size < MIN_SIZE || size > MAX_SIZE) {
    throw new RangeError(`identicon size must be a whole number of pixels from ${MIN_SIZE} to ${MAX_SIZE}`);
  }
  const hash = createHash("sha256").update(normalised(name)).digest();
  return renderSvg(identiconSvg(hash, size), format);
}

/** A strong ETag: the same inputs, generator and renderer make the same bytes. */
export function identiconEtag(name: string, size: number, format: IdenticonFormat): string {
  const digest = createHash("sha256")
    .update(`identicon v${IDENTICON_VERSION}\n${svgRenderer}\n${format} ${size}\n${normalised(name)}`)
    .digest("base64url");
  return `"${digest.slice(0, 32)}"`;
}

function identiconSvg(hash: Buffer, size: number): string {
  // five cells and a half-cell margin each side; whole pixels, the remainder split between the margins
  const cell = Math.floor(size / 6);
  const margin = Math.floor((size - 5 * cell) / 2);
  const rects: string[] = [];
  for (let column = 0; column < 3; column++) {
    for (let row = 0; row < 5; row++) {
      if (((hash[column * 5 + row] ?? 0) & 1) === 0) continue;
      const y = margin + row * cell;
      for (const c of column === 2 ? [2] : [column, 4 - column]) {
        rects.push(`<rect x="${margin + c * cell}" y="${y}" width="${cell}" height="${cell}"/>`);
      }
    }
  }
  const hue = ((hash[16] ?? 0) * 256 + (hash[17] ?? 0)) % 360;
  const saturation = 45 + ((hash[18] ?? 0) % 20);
  const lightness = 40 + ((hash[19] ?? 0) % 20);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">` +
    `<rect width="${size}" height="${size}" fill="${BACKGROUND}"/>` +
    `<g fill="${hslToHex(hue, saturation, lightness)}">${rects.join("")}</g></svg>`
  );
}

/** HSL (degrees, percent, percent) to #rrggbb, so the renderer sees a plain colour. */
function hslToHex(h: number, s: number, l: number): string {
  const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
  const channel = (n: number) => {
    const k = (n + h / 30) % 12;
    const value = l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(value * 255)
      .toString(16)
      .padStart(2, "0");
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}
