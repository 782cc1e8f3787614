/**
 * Tiny DOM builder used by the pure view functions. Text is always set through text nodes
 * (never innerHTML): payloads are untrusted display data.
 */
import { STATUS_GLYPH } from "@cleanroom-lab/kernel/dist/display/format.js";

export type Child = Node | string | number | null | undefined | false;

/**
 * Create an element with attributes and children.
 *
 * @example
 * h("div", { class: "crl-row", "data-kind": "budget" }, "spent ", h("b", {}, "1.25"))
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return el;
}

/**
 * A table with a header row; cells may be nodes or text. `opts.colClass` classes every cell of
 * a column (e.g. `crl-num`: right-aligned, tabular numerals), `opts.headTitle` gives a header
 * cell a tooltip, `opts.foot` adds a footer row (e.g. the ± of each noisy column).
 */
export function table(
  head: string[],
  rows: Child[][],
  rowClass: (i: number) => string | undefined = () => undefined,
  opts: { colClass?: (j: number) => string | undefined; headTitle?: (j: number) => string | undefined; foot?: Child[] } = {},
): HTMLTableElement {
  const cc = opts.colClass ?? (() => undefined);
  return h(
    "table",
    { class: "crl-table" },
    h("thead", {}, h("tr", {}, ...head.map((c, j) => h("th", { class: cc(j), title: opts.headTitle?.(j) }, c)))),
    h("tbody", {}, ...rows.map((r, i) => h("tr", { class: rowClass(i) }, ...r.map((c, j) => h("td", { class: cc(j) }, c))))),
    opts.foot ? h("tfoot", {}, h("tr", { class: "crl-row-pm" }, ...opts.foot.map((c, j) => h("td", { class: cc(j) }, c)))) : null,
  );
}

const GLYPH = STATUS_GLYPH;

/** A status chip: glyph + word, coloured by class (readable without colour too). */
export function status(s: string): HTMLSpanElement {
  const tone = ["ok", "allow", "released", "charged"].includes(s)
    ? "good"
    : ["refused", "failed", "deny", "denied"].includes(s)
      ? "bad"
      : "neutral";
  return h("span", { class: `crl-status crl-status-${tone}`, "data-status": s }, `${GLYPH[s] ?? ""} ${s}`.trim());
}

/** A labelled value: `<span class="crl-kv"><span>label</span> <b>value</b></span>`. */
export function kv(label: string, value: Child, attrs: Record<string, string> = {}): HTMLSpanElement {
  return h("span", { class: "crl-kv", ...attrs }, h("span", { class: "crl-kv-label" }, label), " ", h("b", {}, value));
}

/** Monospace, shortened hash with the full value as a tooltip. */
export function hash(hex: string): HTMLElement {
  const short = hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : hex;
  return h("code", { class: "crl-hash", title: hex }, short);
}

/**
 * Dotted or slashed names ("marketing.advertising.measurement", "retailer/purchases") with a
 * line-break opportunity after each dot and slash, so a narrow panel wraps them between parts
 * instead of inside a word.
 */
export function breakable(name: string): HTMLElement {
  const parts = name.split(/(?<=[./])/);
  const out: Child[] = [];
  parts.forEach((p, i) => out.push(p, i < parts.length - 1 ? h("wbr") : null));
  return h("span", {}, ...out);
}

/** A template by its approved name, the hash on hover; the short hash when the room has no name for it. */
export function templateRef(t: { name?: string | undefined; hash: string }): HTMLElement {
  return t.name ? h("span", { class: "crl-template", title: `template ${t.hash}`, "data-template-hash": t.hash }, t.name) : hash(t.hash);
}
