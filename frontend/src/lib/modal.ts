// A Svelte action for dialogs: focus goes to the first field (or [data-autofocus]) when it opens,
// Tab and Shift+Tab stay inside it, Escape calls onescape, and focus returns where it was on close.

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export function focusables(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => !el.closest('[inert]'));
}

export function modal(node: HTMLElement, opts: { onescape?: () => void } = {}) {
  let o = opts;
  const before = document.activeElement as HTMLElement | null;
  const first = node.querySelector<HTMLElement>('[data-autofocus]') ?? focusables(node)[0];
  first?.focus();
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      o.onescape?.();
      return;
    }
    if (e.key !== 'Tab') return;
    const els = focusables(node);
    if (!els.length) { e.preventDefault(); return; }
    const i = els.indexOf(document.activeElement as HTMLElement);
    if (e.shiftKey && (i <= 0)) { e.preventDefault(); els[els.length - 1].focus(); }
    else if (!e.shiftKey && (i === -1 || i === els.length - 1)) { e.preventDefault(); els[0].focus(); }
  };
  // Focus that leaves the dialog some other way (a click on the backdrop) comes back into it.
  const onFocusIn = (e: FocusEvent) => {
    if (!node.contains(e.target as Node)) (focusables(node)[0] ?? node).focus();
  };
  node.addEventListener('keydown', onKey);
  document.addEventListener('focusin', onFocusIn);
  return {
    update(next: { onescape?: () => void }) { o = next; },
    destroy() {
      node.removeEventListener('keydown', onKey);
      document.removeEventListener('focusin', onFocusIn);
      if (before && document.contains(before)) before.focus();
    },
  };
}
