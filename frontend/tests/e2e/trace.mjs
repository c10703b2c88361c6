// Chromium performance traces for benchmarks: record with CDP Tracing on a page, then summarise the
// renderer main thread — which tasks were long, how much of their wall time the thread actually ran
// (thread time; the rest is the machine not scheduling the renderer), and what they spent it on.
//
//   const tr = await startTrace(page);  … ;  const events = await tr.stop('/tmp/x.json');
//   console.log(summariseTrace(events, { longMs: 50 }));
import fs from 'node:fs';

const CATEGORIES = ['toplevel', 'devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink.user_timing'];

/** startTrace starts tracing `page`; stop(path?) ends it, optionally saves the JSON, and returns the events. */
export async function startTrace(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Tracing.start', {
    transferMode: 'ReturnAsStream',
    traceConfig: { recordMode: 'recordContinuously', includedCategories: CATEGORIES, excludedCategories: ['*'] },
  });
  return {
    async stop(file) {
      const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
      await cdp.send('Tracing.end');
      const { stream } = await done;
      const parts = [];
      for (;;) {
        const c = await cdp.send('IO.read', { handle: stream, size: 1 << 22 });
        parts.push(c.base64Encoded ? Buffer.from(c.data, 'base64').toString() : c.data);
        if (c.eof) break;
      }
      await cdp.send('IO.close', { handle: stream });
      await cdp.detach().catch(() => {});
      const text = parts.join('');
      if (file) fs.writeFileSync(file, text);
      const j = JSON.parse(text);
      return Array.isArray(j) ? j : j.traceEvents;
    },
  };
}

const TOP = new Set(['ThreadControllerImpl::RunTask', 'RunTask']);

/**
 * summariseTrace reports, for the busiest renderer main thread: the total wall and thread time of its
 * top-level tasks, and the tasks longer than longMs, longest first, each with the self time (wall ms)
 * of the events inside it grouped by name.
 */
export function summariseTrace(events, { longMs = 50, top = 12 } = {}) {
  const names = new Map();
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args?.name);
  const byThread = new Map();
  for (const e of events) {
    if (e.ph !== 'X' || names.get(`${e.pid}:${e.tid}`) !== 'CrRendererMain') continue;
    const k = `${e.pid}:${e.tid}`;
    if (!byThread.has(k)) byThread.set(k, []);
    byThread.get(k).push(e);
  }
  let main = [];
  for (const evs of byThread.values()) if (evs.length > main.length) main = evs;
  main.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  // Top-level tasks: the outermost RunTask events (one can nest another).
  const tasks = [];
  for (const e of main) if (TOP.has(e.name) && !(tasks.length && e.ts < tasks.at(-1).ts + tasks.at(-1).dur)) tasks.push(e);
  const wall = tasks.reduce((s, e) => s + e.dur, 0) / 1000;
  const thread = tasks.reduce((s, e) => s + (e.tdur ?? 0), 0) / 1000;
  // Self time (own duration less that of the events inside it) by event name, for each long task.
  const long = [];
  let i = 0;
  for (const task of tasks) {
    while (i < main.length && main[i] !== task) i++;
    if (task.dur / 1000 < longMs) continue;
    const parts = new Map();
    const stack = [];
    const close = (e) => {
      const p = parts.get(e.label) ?? { ms: 0, n: 0 };
      p.ms += e.self / 1000; p.n++;
      parts.set(e.label, p);
    };
    for (let j = i; j < main.length && main[j].ts < task.ts + task.dur; j++) {
      const e = main[j];
      while (stack.length && stack.at(-1).end <= e.ts) close(stack.pop());
      const fn = e.name === 'FunctionCall' ? e.args?.data?.functionName || e.args?.data?.url?.split('/').pop() : '';
      const node = { label: fn ? `FunctionCall ${fn}` : e.name, end: e.ts + e.dur, self: e.dur };
      if (stack.length) stack.at(-1).self -= e.dur;
      stack.push(node);
    }
    while (stack.length) close(stack.pop());
    long.push({ e: task, parts });
  }
  // Where the main thread's CPU went over the whole trace: self thread time by event name.
  const cpu = new Map();
  {
    const stack = [];
    const close = (n) => cpu.set(n.label, (cpu.get(n.label) ?? 0) + n.self);
    for (const e of main) {
      while (stack.length && stack.at(-1).end <= e.ts) close(stack.pop());
      const t = e.tdur ?? 0;
      if (stack.length) stack.at(-1).self -= t;
      stack.push({ label: e.name, end: e.ts + e.dur, self: t });
    }
    while (stack.length) close(stack.pop());
  }
  const t0 = tasks[0]?.ts ?? 0;
  long.sort((a, b) => b.e.dur - a.e.dur);
  return {
    mainThreadTasks: tasks.length,
    taskWallMs: Math.round(wall),
    taskThreadMs: Math.round(thread),
    cpuMsByEvent: Object.fromEntries([...cpu].sort((a, b) => b[1] - a[1]).slice(0, top).map(([n, us]) => [n, Math.round(us / 1000)])),
    longTasks: long.length,
    // A task whose thread time is long is the page's own doing; one that is long only in wall time
    // waited for a CPU.
    longestTaskThreadMs: Math.round(Math.max(0, ...tasks.map((e) => e.tdur ?? 0)) / 1000),
    tasksOverLongMsOfThreadTime: tasks.filter((e) => (e.tdur ?? 0) / 1000 >= longMs).length,
    longest: long.slice(0, top).map(({ e, parts }) => ({
      atMs: Math.round((e.ts - t0) / 1000),
      wallMs: Math.round(e.dur / 1000),
      threadMs: Math.round((e.tdur ?? 0) / 1000),
      inside: [...parts].sort((a, b) => b[1].ms - a[1].ms).slice(0, 6)
        .map(([n, p]) => `${n} ×${p.n}: ${Math.round(p.ms)} ms`),
    })),
  };
}
