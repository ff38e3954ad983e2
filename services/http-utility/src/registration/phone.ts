import {
  type CountryCode,
  type PhoneNumber,
  parsePhoneNumberWithError,
  validatePhoneNumberLength,
} from "libphonenumber-js/max";

/**
 * Phone numbers as apps send them (the `node` of docs/registration.md), normalised to E.164 with
 * libphonenumber-js.
 * The `max` metadata: it tells valid numbers from merely well-sized ones and finds the country of a number
 * whose calling code several countries share (+1, +44, +7).
 *
 * Accepted: `+<country code><number>`, `00<country code><number>`, and bare digits that start with the
 * country code (legacy apps send the msisdn without `+`); spaces, dots, dashes and brackets are ignored.
 * A national number (leading 0, or no country code) is refused: without knowing the country, it cannot be
 * told apart from an international one.
 */

export type NormalisedNumber =
  | {
      ok: true;
      /** `+306912345678` */
      e164: string;
      /** `306912345678`: E.164 without `+`, the user part of the JID */
      msisdn: string;
      /** undefined for non-geographic numbers (+800, +882…) */
      country: CountryCode | undefined;
      /** `+30`: the calling code, the scope of the per-prefix SMS budget */
      prefix: string;
    }
  | { ok: false; message: string };

const EXAMPLE = "+306912345678";
const INTERNATIONAL = `send it in international format: + (or 00), the country code, then the number, e.g. ${EXAMPLE}`;
const MAX_INPUT = 40;

const no = (message: string): NormalisedNumber => ({ ok: false, message });

export function normaliseNumber(input: string): NormalisedNumber {
  const raw = input.trim();
  if (raw.length === 0) return no(`node: the phone number is empty; ${INTERNATIONAL}`);
  if (raw.length > MAX_INPUT) return no(`node: too long for a phone number; ${INTERNATIONAL}`);
  if (/\p{L}/u.test(raw)) return no(`node: a phone number has no letters; ${INTERNATIONAL}`);
  if (!/^\+?[\d\s().-]+$/.test(raw)) {
    return no(`node: only digits, a leading + and spaces, dots, dashes or brackets; ${INTERNATIONAL}`);
  }
  const digits = raw.replace(/\D/g, "");
  let international: string;
  const explicit = raw.startsWith("+") || digits.startsWith("00");
  if (raw.startsWith("+")) international = `+${digits}`;
  else if (digits.startsWith("00")) international = `+${digits.slice(2)}`;
  else if (digits.startsWith("0")) {
    return no(`node: ${raw} looks like a national number (it starts with 0); ${INTERNATIONAL}`);
  } else international = `+${digits}`;

  let phone: PhoneNumber;
  try {
    phone = parsePhoneNumberWithError(international);
  } catch (err) {
    const why = (err as Error).message;
    if (why === "INVALID_COUNTRY") {
      return no(`node: ${raw} does not start with a country code; ${INTERNATIONAL}`);
    }
    if (why === "TOO_SHORT") return no(`node: ${raw} is too short for a phone number; ${INTERNATIONAL}`);
    return no(`node: ${raw} is not a phone number; ${INTERNATIONAL}`);
  }
  if (!phone.isValid()) {
    const length = validatePhoneNumberLength(international);
    if (!explicit) {
      // bare digits: most likely a national number whose first digits happen to be some calling code
      return no(
        `node: ${raw} is not a valid number with its country code (was it left out?); ${INTERNATIONAL}`,
      );
    }
    const where = phone.country ? ` in ${phone.country}` : ` with country code +${phone.countryCallingCode}`;
    if (length === "TOO_SHORT") return no(`node: ${raw} is too short for a number${where}; ${INTERNATIONAL}`);
    if (length === "TOO_LONG") return no(`node: ${raw} is too long for a number${where}; ${INTERNATIONAL}`);
    return no(`node: ${raw} is not a valid number${where}; ${INTERNATIONAL}`);
  }
  return {
    ok: true,
    e164: phone.number,
    msisdn: phone.number.slice(1),
    country: phone.country,
    prefix: `+${phone.countryCallingCode}`,
  };
}

/** An empty list allows every country; a non-geographic number only when the list is empty. */
export function countryAllowed(country: CountryCode | undefined, allowed: readonly string[]): boolean {
  return allowed.length === 0 || (country !== undefined && allowed.includes(country));
}
