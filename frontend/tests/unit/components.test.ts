// Components against the api module over a fake transport (jsdom).
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { Api } from '../../src/lib/api';
import { ApiError } from '../../src/lib/transport';
import { AppState } from '../../src/lib/state.svelte';
import App from '../../src/App.svelte';
import RunDialog from '../../src/components/RunDialog.svelte';
import LogView from '../../src/components/LogView.svelte';
import ImagesView from '../../src/components/ImagesView.svelte';
import StatsCharts from '../../src/components/StatsCharts.svelte';
import SettingsView from '../../src/components/SettingsView.svelte';
import { FakeTransport, tick, until } from './fake-transport';

afterEach(() => { cleanup(); location.hash = ''; });

const zero = '0001-01-01T00:00:00Z';
function ctr(over: Record<string, unknown>) {
  return { ID: 'a'.repeat(64), Name: 'web', Image: 'nginx', ImageID: 'sha256:1', State: 'running', Created: '2026-01-01T00:00:00Z',
    StartedAt: new Date(Date.now() - 65_000).toISOString(), FinishedAt: zero, ExitCode: 0, RestartCount: 0,
    Ports: [{ HostIP: '127.0.0.1', HostPort: 8080, ContainerPort: 80, Proto: 'tcp' }], Mounts: [], Error: '', ...over };
}

function backend(extra: Record<string, (...a: any[]) => unknown> = {}) {
  let n = 0;
  return new FakeTransport({
    'Containers.List': () => [ctr({}), ctr({ ID: 'b'.repeat(64), Name: 'job', State: 'exited', ExitCode: 2, Ports: [], FinishedAt: new Date().toISOString() })],
    'Images.List': () => [],
    'System.SubscribeEvents': () => `events:${++n}`,
    'Containers.SubscribeStats': () => `stats:${++n}`,
    'Containers.SubscribeLogs': () => `logs:${++n}`,
    'Containers.Unsubscribe': () => null,
    'Containers.Stop': () => null,
    ...extra,
  });
}

describe('App / containers list', () => {
  it('lists containers with state, ports, uptime and live stats; actions call the service', async () => {
    const t = backend();
    render(App, { props: { api: new Api(t) } });
    await until(() => screen.queryByTestId('containers'));
    const rows = document.querySelectorAll('tr[data-container-id]');
    expect(rows).toHaveLength(2);
    expect(rows[0].textContent).toContain('web');
    expect(rows[0].textContent).toContain('8080→80');
    expect(rows[0].textContent).toMatch(/1m \d+s/);
    expect(rows[1].textContent).toContain('Exited (2)');
    await until(() => document.title === 'Skiff — 2 containers, 1 running');

    // One stats subscription, for the running container only; its samples feed the sparklines.
    await until(() => t.called('Containers.SubscribeStats').length === 1);
    expect(t.called('Containers.SubscribeStats')[0].params).toEqual(['a'.repeat(64)]);
    const name = await until(() => ['stats:2', 'stats:3'].find((n) => t.listening(n)));
    t.emit(name!, { Time: new Date().toISOString(), CPUPercent: 42, MemoryUsage: 64e6, MemoryLimit: 512e6 });
    t.emit(name!, { Time: new Date().toISOString(), CPUPercent: 12, MemoryUsage: 65e6, MemoryLimit: 512e6 });
    await tick();
    expect(rows[0].textContent).toContain('12%');
    expect(rows[0].textContent).toContain('65 MB');
    expect(rows[0].querySelectorAll('polyline').length).toBeGreaterThan(0);

    await fireEvent.click(rows[0].querySelector('[data-action="stop"]')!);
    await until(() => t.called('Containers.Stop').length === 1);
    expect(t.called('Containers.Stop')[0].params).toEqual(['a'.repeat(64), -1]);
    expect(location.hash).toBe(''); // the button does not open the row
  });

  it('shows an empty state and errors from the engine', async () => {
    const t = backend({ 'Containers.List': () => [], 'Images.List': () => { throw new ApiError('internal', 'store is locked'); } });
    render(App, { props: { api: new Api(t) } });
    await until(() => screen.queryByTestId('containers-empty'));
    expect(screen.getByText('No containers yet')).toBeTruthy();
    await until(() => screen.queryByText('store is locked'));
  });
});

describe('RunDialog', () => {
  it('sends the fields as the CLI does and shows the server validation error by its field', async () => {
    const t = backend({ 'Containers.Create': () => { throw new ApiError('invalid', 'invalid port mapping "80:x": bad container port (expected [ip:]hostPort:containerPort[/tcp|udp])'); } });
    const st = new AppState(new Api(t));
    let closed = false;
    render(RunDialog, { props: { st, onclose: () => (closed = true) } });
    await fireEvent.input(screen.getByLabelText('Image'), { target: { value: 'nginx:latest' } });
    await fireEvent.input(screen.getByLabelText('Command'), { target: { value: `sh -c 'echo hi'` } });
    await fireEvent.click(screen.getByText('+ Port'));
    await fireEvent.input(screen.getByLabelText('Port 1'), { target: { value: '80:x' } });
    await fireEvent.click(screen.getByText('+ Variable'));
    await fireEvent.input(screen.getByLabelText('Environment variable 1'), { target: { value: 'A=1' } });
    await fireEvent.change(screen.getByLabelText('Restart'), { target: { value: 'always' } });
    await fireEvent.input(screen.getByLabelText('Memory'), { target: { value: '1g' } });
    await fireEvent.click(screen.getByTestId('run-submit'));
    const err = await until(() => document.querySelector('[data-field="ports"]'));
    expect(err!.textContent).toContain('invalid port mapping "80:x"');
    expect(closed).toBe(false);
    expect(t.called('Containers.Start')).toHaveLength(0);
    const req = t.called('Containers.Create')[0].params[0] as Record<string, unknown>;
    expect(req).toMatchObject({ Image: 'nginx:latest', Cmd: ['sh', '-c', 'echo hi'], Ports: ['80:x'], Env: ['A=1'], Restart: 'always', Memory: '1g' });
    expect(String(req.ProgressID)).toMatch(/^run-/);
  });

  it('shows pull progress per layer while running and adds dropped folders as rows', async () => {
    let release!: () => void;
    const t = backend({ 'Containers.Start': () => null, 'Containers.Create': (req: { ProgressID: string }) => new Promise((r) => {
      t.emit(`progress:${req.ProgressID}`, [{ phase: 'pull', layer: 'sha256:' + '1'.repeat(64), done: 50, total: 100, status: 'downloading' },
        { phase: 'pull', layer: 'sha256:' + '2'.repeat(64), done: 0, total: 300, status: 'waiting' }]);
      release = () => r(ctr({}));
    }) });
    const st = new AppState(new Api(t));
    let closed = false;
    render(RunDialog, { props: { st, image: 'busybox', onclose: () => (closed = true) } });
    st.dispatchDrop(['/Users/me/project'], null);
    await tick();
    expect((screen.getByLabelText('Host folder 1') as HTMLInputElement).value).toBe('/Users/me/project');
    expect((screen.getByLabelText('Container path 1') as HTMLInputElement).value).toBe('/mnt/project');
    await fireEvent.click(screen.getByTestId('run-submit'));
    const p = await until(() => screen.queryByTestId('pull-progress'));
    expect(p!.textContent).toContain('0/2 layers');
    expect(p!.querySelectorAll('[data-layer]')).toHaveLength(2);
    expect((t.called('Containers.Create')[0].params[0] as { Volumes: string[] }).Volumes).toEqual(['/Users/me/project:/mnt/project']);
    release();
    await until(() => closed);
  });
});

describe('LogView', () => {
  it('renders only the rows in view of a large buffer, bounded, and filters', async () => {
    const t = backend();
    render(LogView, { props: { api: new Api(t), id: 'c1', name: 'web', capacity: 5000 } });
    const name = await until(() => ['logs:1', 'logs:2'].find((n) => t.listening(n)));
    const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({
      Time: new Date().toISOString(), Stream: (from + i) % 10 === 0 ? 'stderr' : 'stdout', Data: `row ${from + i} \u001b[32mok\u001b[0m\n` }));
    for (let k = 0; k < 6; k++) t.emit(name!, batch(k * 1000, 1000));
    await until(() => screen.getByTestId('log-count').textContent!.startsWith('5,000 lines'));
    expect(screen.getByTestId('log-count').textContent).toContain('1,000 dropped');
    const rendered = document.querySelectorAll('.line');
    expect(rendered.length).toBeGreaterThan(0);
    expect(rendered.length).toBeLessThan(200);
    expect(document.querySelector('.line .c-green')?.textContent).toBe('ok');

    await fireEvent.input(screen.getByTestId('log-search'), { target: { value: 'row 5999' } });
    await until(() => screen.getByTestId('log-count').textContent!.startsWith('1 lines'));
    await until(() => document.querySelector('.line mark')?.textContent === 'row 5999');
    await fireEvent.input(screen.getByTestId('log-search'), { target: { value: '' } });
    await fireEvent.click(screen.getByLabelText('stdout'));
    await until(() => screen.getByTestId('log-count').textContent!.startsWith('500 lines'));
    expect([...document.querySelectorAll('.line')].every((l) => l.classList.contains('err'))).toBe(true);
  });
});

describe('LogView subscriptions', () => {
  it('subscribes once when the container starts while the first subscription is in flight', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let n = 0;
    const t = backend({ 'Containers.SubscribeLogs': async () => { await gate; return `logs:${++n}`; } });
    const r = render(LogView, { props: { api: new Api(t), id: 'c1', name: 'web', running: false } });
    await tick();
    await r.rerender({ api: new Api(t), id: 'c1', name: 'web', running: true });
    await tick();
    release();
    await until(() => t.listening('logs:1'));
    await tick(20);
    expect(t.called('Containers.SubscribeLogs')).toHaveLength(1);
  });

  it('picks up after a restart from the last line without repeating it', async () => {
    let n = 0;
    const t = backend({ 'Containers.SubscribeLogs': () => `logs:${++n}` });
    const api = new Api(t);
    const r = render(LogView, { props: { api, id: 'c1', name: 'web', running: true } });
    await until(() => t.listening('logs:1'));
    t.emit('logs:1', [{ Time: '2026-01-01T00:00:01Z', Stream: 'stdout', Data: 'one\n' }, { Time: '2026-01-01T00:00:02Z', Stream: 'stdout', Data: 'two\n' }]);
    t.emit('logs:1:end', {});
    await r.rerender({ api, id: 'c1', name: 'web', running: false });
    await r.rerender({ api, id: 'c1', name: 'web', running: true });
    await until(() => t.listening('logs:2'));
    expect((t.called('Containers.SubscribeLogs')[1].params[1] as { Since: string }).Since).toBe('2026-01-01T00:00:02Z');
    t.emit('logs:2', [{ Time: '2026-01-01T00:00:02Z', Stream: 'stdout', Data: 'two\n' }, { Time: '2026-01-01T00:00:03Z', Stream: 'stdout', Data: 'three\n' }]);
    await until(() => screen.getByTestId('log-count').textContent!.startsWith('3 lines'));
    expect([...document.querySelectorAll('.line')].map((l) => l.textContent!.trim())).toEqual(['one', 'two', 'three']);
  });
});

describe('ImagesView', () => {
  it('pulls with per-layer progress and shows pull errors', async () => {
    let images: unknown[] = [];
    const t = backend({
      'Images.List': () => images,
      'Images.Pull': async (ref: string, _p: string, pid: string) => {
        if (ref === 'nope') throw new ApiError('not_found', 'pulling "nope": manifest unknown');
        t.emit(`progress:${pid}`, [{ phase: 'pull', layer: 'sha256:' + '3'.repeat(64), done: 10, total: 20, status: 'downloading' }]);
        await tick(30);
        images = [{ ID: 'sha256:' + '4'.repeat(64), RepoTags: [ref], Platform: 'linux/amd64', Created: '2025-01-01T00:00:00Z', Size: 1234567, Config: {} }];
        return images[0];
      },
    });
    const st = new AppState(new Api(t));
    await st.refreshImages();
    render(ImagesView, { props: { st } });
    expect(screen.getByTestId('images-empty')).toBeTruthy();
    await fireEvent.input(screen.getByTestId('pull-ref'), { target: { value: 'nope' } });
    await fireEvent.click(screen.getByTestId('pull-submit'));
    const perr = await until(() => document.querySelector('[data-field="pull"]'));
    expect(perr!.textContent).toContain('The image “nope” was not found');
    expect(perr!.querySelector('details')!.textContent).toContain('manifest unknown'); // the engine's words behind Details
    await fireEvent.input(screen.getByTestId('pull-ref'), { target: { value: 'alpine:3' } });
    await fireEvent.click(screen.getByTestId('pull-submit'));
    const p = await until(() => screen.queryByTestId('pull-progress'));
    expect(p!.textContent).toContain('downloading');
    await until(() => document.querySelector('[data-image="alpine:3"]'));
    expect(document.querySelector('[data-image="alpine:3"]')!.textContent).toContain('1.2 MB');
  });
});

describe('folder drops in the desktop window', () => {
  it('offers to mount a folder dropped on a container, saying how (Containers.MountPlan), via Containers.AddMount', async () => {
    const t = backend({ 'Containers.Ready': () => null, 'Containers.MountPlan': () => 'live',
      'Containers.AddMount': (id: string) => ({ Container: ctr({ ID: id }), Change: 'live' }) });
    (t as { kind: string }).kind = 'wails';
    render(App, { props: { api: new Api(t) } });
    const row = await until(() => document.querySelector(`tr[data-container-id="${'a'.repeat(64)}"]`));
    const orig = document.elementFromPoint;
    document.elementFromPoint = () => row!.querySelector('td');
    try {
      t.emit('filedrop', { x: 100, y: 120, paths: ['/Users/me/data'] });
    } finally {
      document.elementFromPoint = orig;
    }
    const dlg = await until(() => screen.queryByTestId('mount-dialog'));
    expect((screen.getByLabelText('On this computer') as HTMLInputElement).value).toBe('/Users/me/data');
    expect((screen.getByLabelText('Path in container') as HTMLInputElement).value).toBe('/mnt/data');
    await until(() => screen.getByTestId('mount-plan').textContent!.includes('no restart'));
    expect(t.called('Containers.MountPlan')[0].params).toEqual(['a'.repeat(64)]);
    await fireEvent.input(screen.getByLabelText('Path in container'), { target: { value: '/work' } });
    await fireEvent.submit(dlg!);
    await until(() => t.called('Containers.AddMount').length === 1);
    expect(t.called('Containers.AddMount')[0].params).toEqual(['a'.repeat(64), '/Users/me/data', '/work', false]);
    await until(() => !screen.queryByTestId('mount-dialog'));
  });
});

describe('drops that cannot be honoured', () => {
  const dropPaths = async (t: FakeTransport, paths: string[]) => {
    const row = await until(() => document.querySelector(`tr[data-container-id="${'a'.repeat(64)}"]`));
    const orig = document.elementFromPoint;
    document.elementFromPoint = () => row!.querySelector('td');
    try { t.emit('filedrop', { x: 100, y: 120, paths }); } finally { document.elementFromPoint = orig; }
  };
  it('says why several items at once are refused, and opens nothing', async () => {
    const t = backend({ 'Containers.Ready': () => null, 'Containers.MountPlan': () => 'live' });
    (t as { kind: string }).kind = 'wails';
    render(App, { props: { api: new Api(t) } });
    await dropPaths(t, ['/Users/me/a', '/Users/me/b.txt']);
    const toast = await until(() => screen.queryByTestId('activity-error'));
    expect(toast!.textContent).toContain('Drop one folder or file at a time (2 were dropped on web)');
    expect(screen.queryByTestId('mount-dialog')).toBeNull();
    expect(t.called('Containers.MountPlan')).toHaveLength(0);
  });
  it('shows the engine\'s reason in the dialog and offers no Mount when the plan fails', async () => {
    const t = backend({ 'Containers.Ready': () => null,
      'Containers.MountPlan': () => { throw new ApiError('conflict', 'container web is paused (unpause it to change its folders)'); } });
    (t as { kind: string }).kind = 'wails';
    render(App, { props: { api: new Api(t) } });
    await dropPaths(t, ['/Users/me/app.conf']);
    await until(() => screen.queryByTestId('mount-dialog'));
    await until(() => screen.getByTestId('mount-plan').textContent!.includes('is paused'));
    expect((screen.getByLabelText('Path in container') as HTMLInputElement).value).toBe('/mnt/app.conf');
    expect((document.querySelector('[data-testid="mount-dialog"] button[type="submit"]') as HTMLButtonElement).disabled).toBe(true);
  });
});

describe('StatsCharts', () => {
  const sample = (host: number) => ({ Time: new Date().toISOString(), CPUPercent: 5, MemoryUsage: 64e6, MemoryLimit: 512e6, NetRx: 0, NetTx: 0,
    BlockRead: 0, BlockWrite: 0, PIDs: 2, HostMemory: host });
  it('shows the VM\'s memory on the host beside the guest\'s, and nothing when the engine cannot tell (0)', () => {
    render(StatsCharts, { props: { history: [sample(150e6), sample(180e6)] } });
    const host = screen.getByTestId('host-memory');
    expect(host.textContent).toMatch(/VM on this (Mac|host)\s*180 MB/);
    expect(host.closest('.card')!.textContent).toContain('64 MB of 512 MB');
    cleanup();
    render(StatsCharts, { props: { history: [sample(0)] } });
    expect(screen.getByTestId('stats').textContent).toContain('64 MB of 512 MB');
    expect(screen.queryByTestId('host-memory')).toBeNull();
  });
  it('charts a chosen time window with axes, and offers Start when the container is stopped', async () => {
    const at = (ago: number, cpu: number) => ({ ...sample(0), Time: new Date(Date.now() - ago * 1000).toISOString(), CPUPercent: cpu });
    const h = [at(600, 90), at(200, 50), at(30, 10), at(0, 20)];
    render(StatsCharts, { props: { history: h } });
    const cpu = () => screen.getAllByTestId('chart')[0];
    expect([...cpu().querySelectorAll('[data-axis="y"]')].map((e) => e.textContent)).toEqual(['0%', '50%', '100%']);
    expect([...cpu().querySelectorAll('[data-axis="x"]')].map((e) => e.textContent)).toEqual(['-1 min', '-30 s', 'now']);
    const n = () => cpu().querySelector('polyline')!.getAttribute('points')!.split(' ').length;
    expect(n()).toBe(2);
    await fireEvent.click(document.querySelector('[data-window="300"]')!);
    expect(n()).toBe(3);
    expect([...cpu().querySelectorAll('[data-axis="x"]')].map((e) => e.textContent)).toEqual(['-5 min', '-2.5 min', 'now']);
    await fireEvent.click(document.querySelector('[data-window="900"]')!);
    expect(n()).toBe(4);
    cleanup();
    let started = 0;
    render(StatsCharts, { props: { history: h, running: false, onstart: () => started++ } });
    await fireEvent.click(screen.getByTestId('pane-start'));
    expect(started).toBe(1);
    expect(screen.queryByTestId('stats')).toBeNull();
  });
});

describe('LogView on an ended stream, with a range', () => {
  it('has no Follow toggle once a stopped container\'s stream ended; a From/To range asks for those lines only', async () => {
    let n = 0;
    const t = backend({ 'Containers.SubscribeLogs': () => `logs:${++n}` });
    const api = new Api(t);
    render(LogView, { props: { api, id: 'c1', name: 'web', running: false } });
    await until(() => t.listening('logs:1'));
    expect(screen.queryByTestId('log-follow')).not.toBeNull();
    t.emit('logs:1', [{ Time: '2026-01-01T00:00:01Z', Stream: 'stdout', Data: 'one\n' }]);
    t.emit('logs:1:end', {});
    await until(() => screen.queryByTestId('log-follow') === null);
    await fireEvent.input(screen.getByTestId('log-since'), { target: { value: '2026-01-01T10:00:00' } });
    await fireEvent.input(screen.getByTestId('log-until'), { target: { value: '2026-01-01T11:00:00' } });
    await fireEvent.click(screen.getByTestId('log-range'));
    await until(() => t.listening('logs:2'));
    const q = t.called('Containers.SubscribeLogs')[1].params[1] as { Since: string; Until: string; Follow: boolean };
    expect(q).toMatchObject({ Since: new Date(2026, 0, 1, 10).toISOString(), Until: new Date(2026, 0, 1, 11).toISOString(), Follow: false });
    await fireEvent.input(screen.getByTestId('log-until'), { target: { value: '2026-01-01T09:00:00' } });
    await fireEvent.click(screen.getByTestId('log-range'));
    await until(() => screen.queryByRole('alert')?.textContent === 'The start of the range must be before its end.');
    expect(t.called('Containers.SubscribeLogs')).toHaveLength(2);
  });
});

describe('SettingsView', () => {
  it('shows the settings, checks fields before saving, saves through Settings.Set, and logs in to a registry', async () => {
    let cur = { DefaultCPUs: 0, DefaultMemoryMiB: 0, EngineCPUs: 4, EngineMemoryMiB: 512, DataDir: '/home/me/.skiff',
      StartAtLogin: false, StartAtLoginFile: '', Registries: [] as string[] };
    const t = backend({
      'Settings.Get': () => cur,
      'Settings.Set': (u: { DefaultCPUs: number; DefaultMemoryMiB: number; StartAtLogin: boolean }) => {
        cur = { ...cur, ...u, StartAtLoginFile: u.StartAtLogin ? '/home/me/.config/autostart/dev.skiff.skiff.desktop' : '' };
        return cur;
      },
      'Settings.RegistryLogin': (r: string) => {
        if (r === 'bad.example') throw new ApiError('invalid', 'logging in to bad.example: the registry refused the username or password (401 Unauthorized)');
        cur = { ...cur, Registries: [r] };
        return null;
      },
    });
    const st = new AppState(new Api(t));
    render(SettingsView, { props: { st } });
    await until(() => screen.queryByTestId('data-dir')?.textContent === '/home/me/.skiff');
    expect((screen.getByLabelText('Memory') as HTMLInputElement).placeholder).toBe('512m');
    await fireEvent.input(screen.getByLabelText('Memory'), { target: { value: '10m' } });
    await fireEvent.submit(screen.getByTestId('settings-form'));
    await until(() => document.querySelector('[data-field="memory"]'));
    expect(t.called('Settings.Set')).toHaveLength(0);
    await fireEvent.input(screen.getByLabelText('CPUs'), { target: { value: '2' } });
    await fireEvent.input(screen.getByLabelText('Memory'), { target: { value: '1g' } });
    await fireEvent.click(screen.getByTestId('start-at-login'));
    await fireEvent.submit(screen.getByTestId('settings-form'));
    await until(() => t.called('Settings.Set').length === 1);
    expect(t.called('Settings.Set')[0].params).toEqual([{ DefaultCPUs: 2, DefaultMemoryMiB: 1024, StartAtLogin: true }]);
    await until(() => screen.getByTestId('settings').textContent!.includes('dev.skiff.skiff.desktop'));
    expect(st.settings?.DefaultMemoryMiB).toBe(1024);

    const login = async (r: string) => {
      await fireEvent.input(screen.getByLabelText('Registry'), { target: { value: r } });
      await fireEvent.input(screen.getByLabelText('Username'), { target: { value: 'me' } });
      await fireEvent.input(screen.getByLabelText('Password or token'), { target: { value: 'pw' } });
      await fireEvent.submit(screen.getByTestId('registry-form'));
    };
    await login('bad.example');
    await until(() => screen.queryByTestId('registry-error')?.textContent?.includes('refused the username or password'));
    await login('ghcr.io');
    await until(() => document.querySelector('[data-registry="ghcr.io"]'));
    expect(t.called('Settings.RegistryLogin')[1].params).toEqual(['ghcr.io', 'me', 'pw']);
  });
});

describe('⌘, opens Settings', () => {
  it('goes to #/settings on Ctrl+, or ⌘,', async () => {
    const t = backend({ 'Settings.Get': () => ({ DefaultCPUs: 0, DefaultMemoryMiB: 0, EngineCPUs: 2, EngineMemoryMiB: 512, DataDir: '/d',
      StartAtLogin: false, StartAtLoginFile: '', Registries: [] }) });
    render(App, { props: { api: new Api(t) } });
    await until(() => screen.queryByTestId('containers'));
    await fireEvent.keyDown(window, { key: ',', metaKey: true });
    await until(() => location.hash === '#/settings');
    await until(() => screen.queryByTestId('data-dir')?.textContent === '/d');
  });
});
