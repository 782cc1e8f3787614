/**
 * Synthetic e-mail identifiers and the "realistic mess" each party adds to them.
 *
 * What it does: gives every synthetic person one unique base address
 * (`name pattern + unique digits @ domain`) and renders it the way real files hold it:
 * mixed case, stray whitespace, plus-addressing (`ann+promo@…`), and for Gmail, dots
 * moved inside the local part and the `googlemail.com` alias. `normalizeStudyEmail` is the
 * exact inverse the ground truth is computed with: lower-case, trim, drop `+tag`, and for
 * gmail.com/googlemail.com drop dots and map to gmail.com.
 *
 * Uniqueness: the digits are a bijective scramble of the person index (mod a prime), and
 * names are letters only, so two people never share a normalised key — the true overlap
 * is exactly the number of people present in both files.
 *
 * Threat model: synthetic data; the identity layer must reach the same normal form
 * independently (identity/normalize.ts) for PSI to recover the stated overlap.
 */
import type { UniformSource } from "./detmath.js";
import { cumulative } from "./detmath.js";

export const FIRST = [
  "ann",
  "ben",
  "chloe",
  "david",
  "emma",
  "felix",
  "grace",
  "hugo",
  "iris",
  "jack",
  "kate",
  "liam",
  "maya",
  "noah",
  "olga",
  "paul",
  "quinn",
  "rosa",
  "sam",
  "tara",
  "umar",
  "vera",
  "will",
  "xena",
  "yusuf",
  "zoe",
  "amir",
  "bella",
  "carlos",
  "dana",
  "elif",
  "farah",
  "gita",
  "hana",
  "ivan",
  "jules",
  "kofi",
  "lena",
  "mateo",
  "nina",
  "omar",
  "priya",
  "ravi",
  "sofia",
  "tomas",
  "ines",
];
export const LAST = [
  "smith",
  "jones",
  "garcia",
  "müller",
  "nguyen",
  "kowalski",
  "okafor",
  "rossi",
  "tanaka",
  "silva",
  "brown",
  "martin",
  "dubois",
  "novak",
  "kim",
  "lopez",
  "wilson",
  "ahmed",
  "cohen",
  "ivanova",
  "berg",
  "costa",
  "patel",
  "reyes",
  "schmidt",
  "walsh",
  "yilmaz",
  "zhang",
  "moreau",
  "olsen",
  "haddad",
  "lind",
  "baker",
  "evans",
  "fischer",
  "greco",
  "horvat",
  "jensen",
].map((s) => s.replace("ü", "u"));
export const DOMAINS = [
  "gmail.com",
  "yahoo.com",
  "outlook.com",
  "hotmail.com",
  "icloud.com",
  "aol.com",
  "proton.me",
  "comcast.net",
  "gmx.com",
  "fastmail.com",
  "mail.com",
  "shopmail.net",
];
/** Domain weights (shared with the SQL generator, study-sql.ts). */
export const DOMAIN_WEIGHTS = [36, 12, 10, 8, 8, 3, 3, 4, 2, 2, 4, 8];
const DOMAIN_CUM = cumulative(DOMAIN_WEIGHTS);
const PLUS_TAGS = ["promo", "shop", "news", "ads", "2024", "deals", "x"];

/** Mess rates per rendering (each a probability in [0, 1]). */
export interface MessRates {
  /** Not all lower-case (capitalised words, ALL CAPS, or upper-case domain). */
  caseChange: number;
  /** Leading and/or trailing spaces or a tab. */
  whitespace: number;
  /** A `+tag` before the @. */
  plusTag: number;
  /** Gmail only: dots removed from or added to the local part. */
  gmailDots: number;
  /** Gmail only: `googlemail.com` instead of `gmail.com`. */
  googlemail: number;
}

export const DEFAULT_MESS: MessRates = {
  caseChange: 0.3,
  whitespace: 0.06,
  plusTag: 0.08,
  gmailDots: 0.25,
  googlemail: 0.1,
};

/** The unique-digits scramble (also used by study-sql.ts): `((id * MULT + OFFSET) % PRIME) + 1`. */
export const DIGITS = { PRIME: 2147483647, MULT: 1103513, OFFSET: 104729 } as const; // MULT < 2^21, so id * MULT < 2^52 stays exact
const { PRIME, MULT, OFFSET } = DIGITS;

/** Unique digits for person `id` (bijective for id < 2^31 - 1). */
function uniqueDigits(id: number): string {
  return String(((id * MULT + OFFSET) % PRIME) + 1);
}

/**
 * The base address a person signed up with (before any rendering mess). Draws from `u`.
 *
 * @example
 * baseEmail(42, new UniformSource(seededRng("x"))) // e.g. "maya.okafor1234567@gmail.com"
 */
export function baseEmail(id: number, u: UniformSource): string {
  const f = FIRST[u.below(FIRST.length)]!;
  const l = LAST[u.below(LAST.length)]!;
  const n = uniqueDigits(id);
  const d = DOMAINS[u.pick(DOMAIN_CUM)]!;
  let local: string;
  switch (u.below(5)) {
    case 0:
      local = `${f}.${l}${n}`;
      break;
    case 1:
      local = `${f}${l}${n}`;
      break;
    case 2:
      local = `${f[0]}${l}${n}`;
      break;
    case 3:
      local = `${f}_${l}${n}`;
      break;
    default:
      local = `${l}.${f}${n}`;
  }
  return `${local}@${d}`;
}

function isGmail(domain: string): boolean {
  return domain === "gmail.com" || domain === "googlemail.com";
}

/**
 * Render `base` as one party's file would hold it. Draws from `u`.
 *
 * @example
 * renderEmail("ann.smith12@gmail.com", u, DEFAULT_MESS) // e.g. "  Ann.Smith12+promo@GoogleMail.com"
 */
export function renderEmail(base: string, u: UniformSource, mess: MessRates): string {
  const at = base.lastIndexOf("@");
  let local = base.slice(0, at);
  let domain = base.slice(at + 1);
  if (isGmail(domain)) {
    if (u.bernoulli(mess.gmailDots)) {
      if (local.includes(".") && u.bernoulli(0.5)) local = local.split(".").join("");
      else if (local.length > 2) {
        const p = 1 + u.below(local.length - 1);
        if (local[p - 1] !== "." && local[p] !== ".") local = `${local.slice(0, p)}.${local.slice(p)}`;
      }
    }
    if (u.bernoulli(mess.googlemail)) domain = "googlemail.com";
  }
  if (u.bernoulli(mess.plusTag)) local = `${local}+${PLUS_TAGS[u.below(PLUS_TAGS.length)]}`;
  let s = `${local}@${domain}`;
  if (u.bernoulli(mess.caseChange)) {
    const style = u.below(3);
    if (style === 0) s = s.toUpperCase();
    else if (style === 1) s = s.replace(/(^|[._@])([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase());
    else s = `${local}@${domain.toUpperCase()}`;
  }
  if (u.bernoulli(mess.whitespace)) {
    const w = u.below(3);
    s = w === 0 ? ` ${s}` : w === 1 ? `${s} ` : `\t${s}  `;
  }
  return s;
}

/**
 * The normal form the ground truth uses: trim, lower-case, drop `+tag`, and for
 * gmail.com/googlemail.com drop dots in the local part and use gmail.com.
 *
 * @example
 * normalizeStudyEmail("  Ann.Smith12+promo@GoogleMail.com") // "annsmith12@gmail.com"
 */
export function normalizeStudyEmail(raw: string): string {
  const s = raw.trim().toLowerCase();
  const at = s.lastIndexOf("@");
  if (at <= 0) return s;
  let local = s.slice(0, at);
  let domain = s.slice(at + 1);
  const plus = local.indexOf("+");
  if (plus >= 0) local = local.slice(0, plus);
  if (isGmail(domain)) {
    local = local.split(".").join("");
    domain = "gmail.com";
  }
  return `${local}@${domain}`;
}
