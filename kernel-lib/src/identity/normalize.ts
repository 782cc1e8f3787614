/**
 * Identifier normalisation: the one documented rule set every party applies before PSI,
 * so that "Alice.Smith+ads@GoogleMail.com " on one side meets "alicesmith@gmail.com" on the
 * other.
 *
 * Threat model: normalisation runs locally on each party's own data. Its output never
 * leaves the party (only blinded points do), so nothing here is secret — but rejections
 * are reported per row with a *code* only, never the value, because rejection reports are
 * shown in notebooks and match reports that the other party sees.
 *
 * Email rules (applied in this order; mirrors the advertiser "customer match" conventions):
 *  1. must be a string; trim surrounding whitespace; lowercase (ASCII + Unicode `toLowerCase`);
 *  2. exactly one "@", non-empty local part, total length ≤ 254 (RFC 5321 §4.5.3.1.3);
 *  3. no whitespace, control characters, or RFC 5322 specials (`()<>[],;:\"`) anywhere;
 *  4. domain: dot-separated labels of [a-z0-9-] (or already-punycoded `xn--`), not starting or
 *     ending with "-", final label ≥ 2 letters;
 *  5. plus addressing: drop everything from the first "+" in the local part (`stripPlus`,
 *     default true; sub-addressing is honoured by Gmail, Outlook, iCloud, Fastmail, Proton…);
 *  6. provider rules: `googlemail.com` → `gmail.com`; for gmail.com remove every "." from the
 *     local part (Gmail ignores them).
 *
 * Phone rules (E.164, ITU-T E.164 §6): strip spaces, "-", ".", "/", "(", ")"; "+" or "00"
 * prefix means an international number; otherwise it is national and gets the default
 * country's calling code after dropping the trunk prefix ("0" in most of Europe, "1" in
 * NANP). Result: "+" followed by 8–15 digits.
 */
import { invalid } from "../errors.js";

export type IdentifierKind = "email" | "phone";

/** Per-row rejection codes. They describe the defect, never the value. */
export const REJECTION_CODES = [
  "NOT_A_STRING",
  "EMPTY",
  "TOO_LONG",
  "INVALID_CHARACTER",
  "MISSING_AT",
  "MULTIPLE_AT",
  "LOCAL_PART_EMPTY",
  "DOMAIN_INVALID",
  "TOO_SHORT",
  "HAS_EXTENSION",
  "UNKNOWN_COUNTRY",
  "NATIONAL_NUMBER_INVALID",
] as const;
export type RejectionCode = (typeof REJECTION_CODES)[number];

export type NormalizeResult = { ok: true; value: string } | { ok: false; code: RejectionCode };

export interface EmailOptions {
  /** Drop "+tag" sub-addresses (default true). */
  stripPlus?: boolean;
  /** Apply provider rules (gmail dots, googlemail alias; default true). */
  providerRules?: boolean;
}

export interface PhoneOptions {
  /** ISO 3166 alpha-2 country for national-format numbers (default "US"). */
  defaultCountry?: string;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what an email address must not contain
const EMAIL_FORBIDDEN = /[\s\u0000-\u001f\u007f()<>[\],;:\\"]/u;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const GMAIL_DOMAINS = new Set(["gmail.com", "googlemail.com"]);

/**
 * Normalise one email address.
 *
 * @example
 * normalizeEmail("  Alice.Smith+ads@GoogleMail.com ") // { ok: true, value: "alicesmith@gmail.com" }
 * normalizeEmail("not-an-email")                     // { ok: false, code: "MISSING_AT" }
 */
export function normalizeEmail(raw: unknown, options: EmailOptions = {}): NormalizeResult {
  if (typeof raw !== "string") return { ok: false, code: "NOT_A_STRING" };
  const s = raw.trim().toLowerCase();
  if (s.length === 0) return { ok: false, code: "EMPTY" };
  if (s.length > 254) return { ok: false, code: "TOO_LONG" };
  if (EMAIL_FORBIDDEN.test(s)) return { ok: false, code: "INVALID_CHARACTER" };
  const at = s.indexOf("@");
  if (at < 0) return { ok: false, code: "MISSING_AT" };
  if (s.indexOf("@", at + 1) >= 0) return { ok: false, code: "MULTIPLE_AT" };
  let local = s.slice(0, at);
  let domain = s.slice(at + 1);
  if (domain.endsWith(".")) domain = domain.slice(0, -1); // FQDN root dot
  const labels = domain.split(".");
  if (
    labels.length < 2 ||
    !labels.every((l) => DOMAIN_LABEL.test(l)) ||
    !/^(?:[a-z]{2,63}|xn--[a-z0-9-]+)$/.test(labels[labels.length - 1]!)
  ) {
    return { ok: false, code: "DOMAIN_INVALID" };
  }
  if (options.stripPlus ?? true) {
    const plus = local.indexOf("+");
    if (plus >= 0) local = local.slice(0, plus);
  }
  if ((options.providerRules ?? true) && GMAIL_DOMAINS.has(domain)) {
    domain = "gmail.com";
    local = local.replaceAll(".", "");
  }
  if (local.length === 0 || local.length > 64) return { ok: false, code: local.length === 0 ? "LOCAL_PART_EMPTY" : "TOO_LONG" };
  return { ok: true, value: `${local}@${domain}` };
}

/** Calling code and trunk prefix for national-format numbers, with national-number lengths. */
interface CountryRule {
  cc: string;
  trunk: string;
  min: number;
  max: number;
}
const COUNTRIES: Readonly<Record<string, CountryRule>> = {
  US: { cc: "1", trunk: "1", min: 10, max: 10 },
  CA: { cc: "1", trunk: "1", min: 10, max: 10 },
  GB: { cc: "44", trunk: "0", min: 9, max: 10 },
  IE: { cc: "353", trunk: "0", min: 7, max: 9 },
  DE: { cc: "49", trunk: "0", min: 6, max: 13 },
  FR: { cc: "33", trunk: "0", min: 9, max: 9 },
  NL: { cc: "31", trunk: "0", min: 9, max: 9 },
  ES: { cc: "34", trunk: "", min: 9, max: 9 },
  IT: { cc: "39", trunk: "", min: 6, max: 11 },
  CH: { cc: "41", trunk: "0", min: 9, max: 9 },
  AU: { cc: "61", trunk: "0", min: 9, max: 9 },
  IN: { cc: "91", trunk: "0", min: 10, max: 10 },
  JP: { cc: "81", trunk: "0", min: 9, max: 10 },
  BR: { cc: "55", trunk: "0", min: 10, max: 11 },
};

/** Country codes `normalizePhone` accepts as `defaultCountry`. */
export const PHONE_COUNTRIES: readonly string[] = Object.freeze(Object.keys(COUNTRIES));

/**
 * Normalise one phone number to E.164.
 *
 * @example
 * normalizePhone("(415) 555-0134")                          // { ok: true, value: "+14155550134" }
 * normalizePhone("020 7946 0018", { defaultCountry: "GB" }) // { ok: true, value: "+442079460018" }
 * normalizePhone("0049 30 901820")                          // { ok: true, value: "+4930901820" }
 */
export function normalizePhone(raw: unknown, options: PhoneOptions = {}): NormalizeResult {
  const country = options.defaultCountry ?? "US";
  const rule = COUNTRIES[country];
  if (!rule) invalid("defaultCountry", `one of ${PHONE_COUNTRIES.join(", ")}`, country);
  if (typeof raw !== "string") return { ok: false, code: "NOT_A_STRING" };
  const s = raw.trim().toLowerCase();
  if (s.length === 0) return { ok: false, code: "EMPTY" };
  if (s.length > 40) return { ok: false, code: "TOO_LONG" };
  if (/(?:ext\.?|x|#)\s*\d+$/.test(s)) return { ok: false, code: "HAS_EXTENSION" };
  const compact = s.replace(/[\s\-./()]/g, "");
  if (!/^\+?\d+$/.test(compact)) return { ok: false, code: "INVALID_CHARACTER" };
  let e164: string;
  if (compact.startsWith("+")) e164 = compact.slice(1);
  else if (compact.startsWith("00")) e164 = compact.slice(2);
  else {
    let national = compact;
    if (rule.trunk && national.startsWith(rule.trunk) && national.length === rule.max + rule.trunk.length)
      national = national.slice(rule.trunk.length);
    else if (rule.trunk && national.startsWith(rule.trunk) && national.length > rule.max) national = national.slice(rule.trunk.length);
    if (national.length < rule.min || national.length > rule.max) return { ok: false, code: "NATIONAL_NUMBER_INVALID" };
    e164 = rule.cc + national;
  }
  if (e164.startsWith("0")) return { ok: false, code: "UNKNOWN_COUNTRY" };
  if (e164.length < 8) return { ok: false, code: "TOO_SHORT" };
  if (e164.length > 15) return { ok: false, code: "TOO_LONG" };
  if (e164.startsWith("1") && e164.length !== 11) return { ok: false, code: "NATIONAL_NUMBER_INVALID" };
  return { ok: true, value: `+${e164}` };
}

export interface NormalizedColumn {
  /** The normalised value per row, or null when the row was rejected. */
  values: (string | null)[];
  /** Rejected rows: index and code only. */
  rejections: { row: number; code: RejectionCode }[];
  /** Rejections per code (what a match report shows). */
  rejectionCounts: Partial<Record<RejectionCode, number>>;
}

/**
 * Normalise a column of identifiers, row by row. Never throws on bad values: a bad row is
 * reported by index and code (the value is not echoed), and gets `null`.
 *
 * @example
 * normalizeColumn(["A@x.org", "nope"], "email")
 * // { values: ["a@x.org", null], rejections: [{ row: 1, code: "MISSING_AT" }], rejectionCounts: { MISSING_AT: 1 } }
 */
export function normalizeColumn(
  values: readonly unknown[],
  kind: IdentifierKind,
  options: EmailOptions & PhoneOptions = {},
): NormalizedColumn {
  if (!Array.isArray(values)) invalid("values", "array of identifier strings", values);
  if (kind !== "email" && kind !== "phone") invalid("kind", `"email" or "phone"`, kind);
  const out: (string | null)[] = new Array(values.length);
  const rejections: { row: number; code: RejectionCode }[] = [];
  const rejectionCounts: Partial<Record<RejectionCode, number>> = {};
  for (let i = 0; i < values.length; i++) {
    const r = kind === "email" ? normalizeEmail(values[i], options) : normalizePhone(values[i], options);
    if (r.ok) out[i] = r.value;
    else {
      out[i] = null;
      rejections.push({ row: i, code: r.code });
      rejectionCounts[r.code] = (rejectionCounts[r.code] ?? 0) + 1;
    }
  }
  return { values: out, rejections, rejectionCounts };
}
