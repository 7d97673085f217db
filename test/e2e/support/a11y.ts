// Accessibility basics checked in the browser: every control has a name, and text meets WCAG AA contrast.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import type { Page } from "playwright-core";

/** What an audit found wrong, one line per problem. */
export interface AuditResult {
  readonly unlabelled: string[];
  readonly lowContrast: string[];
  /** Controls and text nodes examined (an audit of an empty page proves nothing). */
  readonly controls: number;
  readonly texts: number;
}

/**
 * Audits the page as rendered: form controls and buttons need an accessible name (label, aria,
 * title or text); visible text needs a contrast ratio of 4.5:1 against its background (3:1 when
 * large: ≥ 24 px, or ≥ 18.66 px bold), WCAG 2.1 AA. Backgrounds are found by walking up to the
 * first opaque ancestor; text over images or gradients is not judged.
 */
export async function audit(page: Page): Promise<AuditResult> {
  return page.evaluate(() => {
    const describe = (el: Element): string => {
      const id = el.id ? `#${el.id}` : "";
      const cls =
        el.className && typeof el.className === "string" ? `.${el.className.split(" ")[0]}` : "";
      return `<${el.tagName.toLowerCase()}${id}${cls}> "${(el.textContent ?? "").trim().slice(0, 40)}"`;
    };
    const visible = (el: Element): boolean => {
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
    };
    const nameOf = (el: HTMLElement): string => {
      const aria = el.getAttribute("aria-label");
      if (aria?.trim()) return aria;
      const by = el.getAttribute("aria-labelledby");
      if (by)
        return by
          .split(/\s+/)
          .map((id) => document.getElementById(id)?.textContent ?? "")
          .join(" ")
          .trim();
      const labels = (el as HTMLInputElement).labels;
      if (labels && labels.length > 0)
        return [...labels]
          .map((l) => l.textContent ?? "")
          .join(" ")
          .trim();
      if (el.title?.trim()) return el.title;
      if (el.tagName === "BUTTON" || el.tagName === "A" || el.tagName === "SUMMARY")
        return (el.textContent ?? "").trim();
      if (el instanceof HTMLInputElement && ["submit", "button"].includes(el.type)) return el.value;
      return "";
    };
    const controls = [
      ...document.querySelectorAll("input, select, textarea, button, a[href], summary"),
    ].filter((el) => visible(el) && (el as HTMLInputElement).type !== "hidden") as HTMLElement[];
    const unlabelled = controls.filter((el) => nameOf(el) === "").map(describe);

    const parse = (c: string): [number, number, number, number] => {
      const m = /rgba?\(([^)]+)\)/.exec(c);
      if (!m) return [0, 0, 0, 0];
      const p = m[1]!
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return [p[0]!, p[1]!, p[2]!, p[3] ?? 1];
    };
    const luminance = ([r, g, b]: number[]): number => {
      const ch = (v: number): number => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * ch(r!) + 0.7152 * ch(g!) + 0.0722 * ch(b!);
    };
    const background = (el: Element | null): number[] | undefined => {
      for (let e = el; e; e = e.parentElement) {
        const s = getComputedStyle(e);
        if (s.backgroundImage !== "none") return undefined;
        const c = parse(s.backgroundColor);
        if (c[3] >= 0.99) return c;
      }
      return [255, 255, 255, 1];
    };
    const lowContrast: string[] = [];
    let texts = 0;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set<Element>();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || seen.has(el) || !(n.textContent ?? "").trim() || !visible(el)) continue;
      if (el.closest("canvas, svg, [aria-hidden='true']")) continue;
      seen.add(el);
      const s = getComputedStyle(el);
      const fg = parse(s.color);
      const bg = background(el);
      if (!bg) continue;
      texts++;
      // A translucent text colour is blended over its background first.
      const blended = [0, 1, 2].map((i) => fg[i]! * fg[3] + bg[i]! * (1 - fg[3]));
      const [hi, lo] = [luminance(blended), luminance(bg)].sort((a, b) => b - a) as [
        number,
        number,
      ];
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(s.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5))
        lowContrast.push(`${describe(el)} ${ratio.toFixed(2)}:1 (${s.color} on ${bg.join(",")})`);
    }
    return { unlabelled, lowContrast, controls: controls.length, texts };
  });
}
