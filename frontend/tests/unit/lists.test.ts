// The containers list as someone who lives in it uses it: the engine going away, search, sort,
// selection and bulk actions, keyboard.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { Api } from '../../src/lib/api';
import App from '../../src/App.svelte';
import { FakeTransport, tick, until } from './fake-transport';
import { ApiError } from '../../src/lib/transport';

afterEach(() => { cleanup(); location.hash = ''; vi.restoreAllMocks(); });

const zero = '0001-01-01T00:00:00Z';
let n = 0;
function ctr(name: string, state: string, over: Record<string, unknown> = {}) {
  n++;
  return { ID: n.toString(16).padStart(2, '0').repeat(32), Name: name, Image: 'busybox', ImageID: 'sha256:1', State: state,
    Created: `2026-01-0${n % 9 + 1}T00:00:00Z`, StartedAt: state === 'running' ? new Date().toISOString() : zero,
    FinishedAt: state === 'exited' ? new Date().toISOString() : zero, ExitCode: 0, RestartCount: 0, Ports: [], Mounts: [], Error: '', ...over };
}

function backend(list: ReturnType<typeof ctr>[]) {
  let k = 0;
  const t: FakeTransport = new FakeTransport({
    'Containers.List': () => list,
    'Images.List': () => [],
    'System.SubscribeEvents': () => `events:${++k}`,
    'Containers.SubscribeStats': () => `stats:${++k}`,
    'Containers.Unsubscribe': () => null,
    'Containers.Stop': (id: string) => { list.find((c) => c.ID === id)!.State = 'exited'; },
    'Containers.Remove': (id: string) => { list.splice(list.findIndex((c) => c.ID === id), 1); },
  });
  return t;
}
const rows = () => [...document.querySelectorAll<HTMLElement>('tr[data-container-id]')];
const names = () => rows().map((r) => r.querySelector('.n')!.textContent);

describe('containers list', () => {
  it('while the engine is away: a banner, greyed list, unknown states, actions disabled; all back when it returns', async () => {
    const t = backend([ctr('web', 'running'), ctr('job', 'exited')]);
    render(App, { props: { api: new Api(t) } });
    await until(() => rows().length === 2);
    expect(screen.queryByTestId('engine-down')).toBeNull();
    t.setState('closed');
    await tick();
    const banner = screen.getByTestId('engine-down');
    expect(banner.textContent).toContain('engine is not running');
    expect(banner.textContent).toContain('skiff daemon');
    expect(rows().map((r) => r.dataset.state)).toEqual(['unknown', 'unknown']);
    expect(rows().every((r) => r.querySelector('.sub')!.textContent!.startsWith('unknown — last seen'))).toBe(true);
    expect(document.querySelector('.scroll.offline')).not.toBeNull();
    const buttons = [...document.querySelectorAll<HTMLButtonElement>('tr [data-action], [data-testid="run-open"], [data-testid="remove-stopped"]')];
    expect(buttons.length).toBeGreaterThan(3);
    expect(buttons.every((b) => b.disabled)).toBe(true);
    expect(screen.getByTestId('running-count').textContent).toBe('state unknown');
    t.setState('connecting'); // a reconnect attempt: still down
    await tick();
    expect(screen.queryByTestId('engine-down')).not.toBeNull();
    t.setState('open', true);
    await until(() => screen.queryByTestId('engine-down') === null);
    expect(rows().map((r) => r.dataset.state).sort()).toEqual(['exited', 'running']);
    expect((document.querySelector('[data-testid="run-open"]') as HTMLButtonElement).disabled).toBe(false);
  });

  it('searches, sorts by column, and `/` focuses the search; Enter opens the focused row', async () => {
    const t = backend([ctr('alpha', 'running', { Image: 'nginx:1' }), ctr('beta', 'exited'), ctr('gamma', 'running', { Image: 'redis' })]);
    render(App, { props: { api: new Api(t) } });
    await until(() => rows().length === 3);
    const search = screen.getByTestId('search') as HTMLInputElement;
    await fireEvent.keyDown(document.body, { key: '/' });
    expect(document.activeElement).toBe(search);
    await fireEvent.input(search, { target: { value: 'nginx' } });
    expect(names()).toEqual(['alpha']);
    await fireEvent.input(search, { target: { value: 'zzz' } });
    expect(screen.getByTestId('no-match').textContent).toContain('zzz');
    await fireEvent.input(search, { target: { value: '' } });
    await fireEvent.click(document.querySelector('[data-sort="name"]')!);
    expect(names()).toEqual(['alpha', 'beta', 'gamma']);
    expect(document.querySelector('[data-sort="name"]')!.closest('th')!.getAttribute('aria-sort')).toBe('ascending');
    await fireEvent.click(document.querySelector('[data-sort="name"]')!);
    expect(names()).toEqual(['gamma', 'beta', 'alpha']);
    await fireEvent.click(document.querySelector('[data-sort="status"]')!);
    expect(names()[2]).toBe('beta');
    // `/` typed in a text field is a character, not a shortcut.
    search.blur();
    const row = rows().find((r) => r.textContent!.includes('gamma'))!;
    row.focus();
    expect(row.tabIndex).toBe(0);
    await fireEvent.keyDown(row, { key: 'Enter' });
    expect(location.hash).toBe(`#/containers/${row.dataset.containerId}`);
  });

  it('selects rows for bulk stop and remove, and removes all stopped containers', async () => {
    const list = [ctr('a1', 'running'), ctr('a2', 'running'), ctr('s1', 'exited'), ctr('s2', 'created')];
    const [a1, a2] = [list[0].ID, list[1].ID];
    const t = backend(list);
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    render(App, { props: { api: new Api(t) } });
    await until(() => rows().length === 4);
    const box = (name: string) => screen.getByLabelText(`Select ${name}`);
    await fireEvent.click(box('a1'));
    await fireEvent.click(box('a2'));
    expect(screen.getByTestId('bulkbar').textContent).toContain('2 selected');
    expect(location.hash).toBe(''); // ticking a box does not open the row
    await fireEvent.click(screen.getByTestId('bulk-stop'));
    await until(() => t.called('Containers.Stop').length === 2);
    expect(t.called('Containers.Stop').map((c) => c.params[0]).sort()).toEqual([a1, a2].sort());
    await until(() => rows().filter((r) => r.dataset.state === 'exited').length === 3);
    await fireEvent.click(screen.getByTestId('remove-stopped'));
    await until(() => rows().length === 0 || screen.queryByTestId('containers-empty'));
    expect(t.called('Containers.Remove').map((c) => c.params)).toHaveLength(4);
    expect(t.called('Containers.Remove').every((c) => c.params[1] === false)).toBe(true);
  });

  it('bulk remove asks once, forces only the running ones', async () => {
    const list = [ctr('r1', 'running'), ctr('x1', 'exited'), ctr('keep', 'exited')];
    const [r1, x1] = [list[0].ID, list[1].ID];
    const t = backend(list);
    const ask = vi.spyOn(window, 'confirm').mockReturnValue(true);
    render(App, { props: { api: new Api(t) } });
    await until(() => rows().length === 3);
    await fireEvent.click(screen.getByLabelText('Select r1'));
    await fireEvent.click(screen.getByLabelText('Select x1'));
    await fireEvent.click(screen.getByTestId('bulk-remove'));
    await until(() => rows().length === 1);
    expect(ask).toHaveBeenCalledTimes(1);
    expect(String(ask.mock.calls[0][0])).toContain('r1 is running');
    const forced = Object.fromEntries(t.called('Containers.Remove').map((c) => c.params as [string, boolean]));
    expect(forced).toEqual({ [r1]: true, [x1]: false });
    expect(names()).toEqual(['keep']);
    expect(screen.queryByTestId('bulkbar')).toBeNull();
  });
});

describe('images list', () => {
  const img = (id: string, tag: string, created: string, size: number) => ({ ID: `sha256:${id.repeat(64).slice(0, 64)}`, Digest: '', RepoTags: [tag],
    RepoDigests: [], Platform: 'linux/amd64', Created: created, Size: size, Config: {} });
  it('shows which images are in use and their created date, searches, sorts, removes selected unused ones and prunes', async () => {
    const images = [img('a', 'busybox:latest', '2024-05-01T10:00:00Z', 2e6), img('b', 'alpine:3', '2025-02-03T10:00:00Z', 8e6), img('c', 'redis:7', '2023-01-01T00:00:00Z', 40e6)];
    const t = backend([ctr('web', 'running', { ImageID: images[0].ID })]);
    t.handlers['Images.List'] = () => images;
    t.handlers['Images.Remove'] = (ref: string) => { images.splice(images.findIndex((i) => i.RepoTags[0] === ref), 1); };
    t.handlers['Images.Prune'] = () => { const gone = images.splice(1); return { ImagesDeleted: gone.map((i) => i.ID), ContainersDeleted: [], SpaceReclaimed: 48e6 }; };
    const ask = vi.spyOn(window, 'confirm').mockReturnValue(true);
    location.hash = '#/images';
    render(App, { props: { api: new Api(t) } });
    const irows = () => [...document.querySelectorAll<HTMLElement>('tr[data-image]')];
    await until(() => irows().length === 3 && irows().some((r) => r.dataset.used === 'yes'));
    const byName = (n: string) => irows().find((r) => r.dataset.image === n)!;
    expect(byName('busybox:latest').textContent).toContain('In use (1)');
    expect(byName('alpine:3').textContent).toContain('Unused');
    expect(byName('alpine:3').textContent).toMatch(/2025/);
    await fireEvent.click(document.querySelector('[data-sort="size"]')!);
    expect(irows().map((r) => r.dataset.image)).toEqual(['redis:7', 'alpine:3', 'busybox:latest']);
    await fireEvent.input(screen.getByTestId('image-search'), { target: { value: 'unused' } });
    expect(irows().map((r) => r.dataset.image)).toEqual(['redis:7', 'alpine:3']);
    await fireEvent.input(screen.getByTestId('image-search'), { target: { value: '' } });
    // Selected for removal: the one in use is kept and the user is told so.
    await fireEvent.click(screen.getByLabelText('Select redis:7'));
    await fireEvent.click(screen.getByLabelText('Select busybox:latest'));
    await fireEvent.click(screen.getByTestId('image-bulk-remove'));
    await until(() => irows().length === 2);
    expect(String(ask.mock.calls[0][0])).toContain('busybox:latest is used by containers and will be kept');
    expect(t.called('Images.Remove').map((c) => c.params)).toEqual([['redis:7', false]]);
    // Enter on a focused row opens its inspector.
    const row = byName('alpine:3');
    row.focus();
    await fireEvent.keyDown(row, { key: 'Enter' });
    expect(screen.getByTestId('image-inspect').textContent).toContain('alpine:3');
    await fireEvent.click(screen.getByTestId('prune'));
    await until(() => irows().length === 1);
    expect(t.called('Images.Prune')).toHaveLength(1);
    await until(() => screen.queryByText('Removed 1 unused image'));
  });

  it('the header checkbox chooses every row shown; a click opens the inspector beside the narrowed list, × closes it', async () => {
    const images = [img('a', 'busybox:latest', '2024-05-01T10:00:00Z', 2e6), img('b', 'alpine:3', '2025-02-03T10:00:00Z', 8e6)];
    const t = backend([]);
    t.handlers['Images.List'] = () => images;
    location.hash = '#/images';
    render(App, { props: { api: new Api(t) } });
    const irows = () => [...document.querySelectorAll<HTMLElement>('tr[data-image]')];
    await until(() => irows().length === 2);
    const all = screen.getByLabelText<HTMLInputElement>('Select all images');
    expect(document.querySelector('[data-sort="name"]')!.closest('th')!.getAttribute('aria-sort')).toBe('ascending');
    await fireEvent.input(screen.getByTestId('image-search'), { target: { value: 'alpine' } });
    await fireEvent.click(all);
    expect(screen.getByTestId('image-bulkbar').textContent).toContain('1 selected');
    await fireEvent.input(screen.getByTestId('image-search'), { target: { value: '' } });
    expect(all.checked).toBe(false);
    await fireEvent.click(all);
    expect(screen.getByTestId('image-bulkbar').textContent).toContain('2 selected');
    expect(irows().every((r) => r.classList.contains('chosen'))).toBe(true);
    await fireEvent.click(all);
    expect(screen.queryByTestId('image-bulkbar')).toBeNull();
    await fireEvent.click(irows()[1]);
    expect(screen.getByTestId('image-inspect').querySelector('h2')!.textContent).toBe('busybox:latest');
    expect(irows()[1].classList.contains('sel')).toBe(true);
    expect(screen.getByTestId('images').classList.contains('narrow')).toBe(true);
    await fireEvent.click(screen.getByLabelText('Close'));
    expect(screen.queryByTestId('image-inspect')).toBeNull();
    expect(screen.getByTestId('images').classList.contains('narrow')).toBe(false);
    await fireEvent.input(screen.getByTestId('image-search'), { target: { value: 'zzz' } });
    expect(document.querySelector('.nomatch')!.textContent).toBe('No image matches “zzz”.');
    expect(document.querySelector('.nomatch')!.getAttribute('colspan')).toBe('8');
  });
});

describe('volumes list', () => {
  type Vol = { Name: string; Driver: string; Labels: Record<string, string> | null; Options: Record<string, string> | null; Created: string;
    Anonymous: boolean; Shared: boolean; Mountpoint: string; UsedBy: string[]; Size: number };
  const vol = (name: string, over: Partial<Vol> = {}): Vol => ({ Name: name, Driver: 'local', Labels: null, Options: { size: '32G' }, Created: '2026-01-02T10:00:00Z',
    Anonymous: false, Shared: false, Mountpoint: `/v/${name}/volume.ext4`, UsedBy: [], Size: -1, ...over });
  const anon = 'f0'.repeat(32);
  function volumeBackend() {
    const web = ctr('web', 'running');
    const sizes: Record<string, number> = { data: 5e6, [anon]: 20e6, cache: 70e6 };
    const vols = [vol('data', { UsedBy: [web.ID], Labels: { app: 'web' } }), vol(anon, { Anonymous: true, Created: '2026-03-01T00:00:00Z' }), vol('cache', { Created: '2025-12-01T00:00:00Z' })];
    const t = backend([web]);
    t.handlers['Volumes.List'] = () => vols.map((v) => ({ ...v, UsedBy: [...v.UsedBy] }));
    t.handlers['Volumes.Inspect'] = (name: string) => ({ ...vols.find((v) => v.Name === name)!, Size: sizes[name] });
    t.handlers['Volumes.Create'] = (name: string, labels: string[], opts: string[]) => {
      if (name.includes('/')) throw new ApiError('invalid', `invalid volume name "${name}": want letters, digits and _.-`);
      const shared = opts.includes('shared=true');
      const v = vol(name, { Labels: Object.fromEntries(labels.map((l) => l.split('='))), Shared: shared, Options: shared ? { shared: 'true' } : { size: '32G' } });
      vols.push(v);
      sizes[name] = 0;
      return { ...v, Size: 0 };
    };
    t.handlers['Volumes.Remove'] = (name: string) => {
      const i = vols.findIndex((v) => v.Name === name);
      if (vols[i].UsedBy.length) throw new ApiError('conflict', `volume "${name}" is in use by container(s) [${vols[i].UsedBy[0].slice(0, 12)}]`);
      vols.splice(i, 1);
    };
    t.handlers['Volumes.Prune'] = (all: boolean) => {
      const gone = vols.filter((v) => !v.UsedBy.length && (all || v.Anonymous));
      for (const g of gone) vols.splice(vols.indexOf(g), 1);
      return { Removed: gone.map((g) => g.Name), Freed: gone.reduce((n, g) => n + sizes[g.Name], 0) };
    };
    return { t, vols, web };
  }
  const vrows = () => [...document.querySelectorAll<HTMLElement>('tr[data-volume]')];
  const vnames = () => vrows().map((r) => r.dataset.volume);
  const byName = (n: string) => vrows().find((r) => r.dataset.volume === n)!;

  it('lists named and anonymous volumes with their containers, sizes (by Inspect) and dates; searches and sorts', async () => {
    const { t, web } = volumeBackend();
    location.hash = '#/volumes';
    render(App, { props: { api: new Api(t) } });
    await until(() => vrows().length === 3 && !vrows().some((r) => r.textContent!.includes('…')));
    expect(byName('data').textContent).toContain('web');
    expect(byName('data').querySelector(`a[href="#/containers/${web.ID}"]`)).not.toBeNull();
    expect(byName('data').textContent).toContain('5.0 MB');
    expect(byName('cache').textContent).toContain('Unused');
    expect(byName('cache').textContent).toContain('70 MB');
    expect(byName('cache').textContent).toMatch(/2025/);
    expect(byName(anon).textContent).toContain('anonymous');
    expect(byName(anon).textContent).toContain(anon.slice(0, 12));
    expect(byName(anon).textContent).not.toContain(anon); // shown short, whole in the title
    expect(t.called('Volumes.Inspect').map((c) => c.params[0]).sort()).toEqual([anon, 'cache', 'data'].sort());
    expect(document.querySelector('a[href="#/volumes"]')!.textContent).toContain('3');

    expect(vnames()).toEqual(['cache', 'data', anon]);
    await fireEvent.click(document.querySelector('[data-sort="size"]')!);
    expect(vnames()).toEqual(['cache', anon, 'data']);
    await fireEvent.click(document.querySelector('[data-sort="use"]')!);
    expect(vnames()[0]).toBe('data');
    const search = screen.getByTestId('volume-search');
    await fireEvent.input(search, { target: { value: 'anonymous' } });
    expect(vnames()).toEqual([anon]);
    await fireEvent.input(search, { target: { value: 'web' } }); // a user's name, or a label
    expect(vnames()).toEqual(['data']);
    await fireEvent.input(search, { target: { value: 'unused named' } });
    expect(vnames()).toEqual(['cache']);
    await fireEvent.input(search, { target: { value: 'zzz' } });
    expect(document.querySelector('.nomatch')!.textContent).toContain('zzz');
    await fireEvent.input(search, { target: { value: '' } });
    const row = byName('data');
    row.focus();
    await fireEvent.keyDown(row, { key: 'Enter' });
    const pane = screen.getByTestId('volume-inspect');
    expect(pane.textContent).toContain('/v/data/volume.ext4');
    expect(pane.textContent).toContain('app=web');
  });

  it('creates a volume with labels, saying which label or name is wrong', async () => {
    const { t } = volumeBackend();
    location.hash = '#/volumes';
    render(App, { props: { api: new Api(t) } });
    await until(() => vrows().length === 3);
    await fireEvent.click(screen.getByTestId('volume-create-open'));
    await fireEvent.input(document.querySelector('#v-name')!, { target: { value: 'pg' } });
    await fireEvent.input(document.querySelector('#v-labels')!, { target: { value: 'tier=db, oops' } });
    await fireEvent.click(screen.getByTestId('volume-create-submit'));
    expect(document.querySelector('[data-field="labels"]')!.textContent).toContain('“oops”');
    expect(t.called('Volumes.Create')).toHaveLength(0);
    await fireEvent.input(document.querySelector('#v-name')!, { target: { value: 'a/b' } });
    await fireEvent.input(document.querySelector('#v-labels')!, { target: { value: 'tier=db, owner = me' } });
    await fireEvent.click(screen.getByTestId('volume-create-submit'));
    await until(() => document.querySelector('[data-field="name"]'));
    expect(document.querySelector('[data-field="name"]')!.textContent).toContain('invalid volume name "a/b"');
    await fireEvent.input(document.querySelector('#v-name')!, { target: { value: 'pg' } });
    await fireEvent.click(screen.getByTestId('volume-create-submit'));
    await until(() => vrows().length === 4);
    expect(t.called('Volumes.Create').at(-1)!.params).toEqual(['pg', ['tier=db', 'owner=me'], []]);
    expect(screen.queryByTestId('volume-create')).toBeNull();
    expect(screen.getByTestId('volume-inspect').textContent).toContain('tier=db');
    expect(screen.getByTestId('volume-storage').textContent).toContain('Disk of 32G');
    // A shared folder, asked for with the checkbox.
    await fireEvent.click(screen.getByTestId('volume-create-open'));
    await fireEvent.input(document.querySelector('#v-name')!, { target: { value: 'both' } });
    await fireEvent.click(screen.getByTestId('volume-create-shared'));
    await fireEvent.click(screen.getByTestId('volume-create-submit'));
    await until(() => vrows().length === 5);
    expect(t.called('Volumes.Create').at(-1)!.params).toEqual(['both', [], ['shared=true']]);
    await until(() => screen.getByTestId('volume-storage').textContent!.includes('Shared folder'));
  });

  it('removes unused volumes; one in use is refused with the engine\'s message; prunes anonymous or all unused', async () => {
    const { t, vols } = volumeBackend();
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    location.hash = '#/volumes';
    render(App, { props: { api: new Api(t) } });
    await until(() => vrows().length === 3);
    await fireEvent.click(byName('data').querySelector('[data-action="remove-volume"]')!);
    await until(() => screen.queryByText(/Removing volume data failed/));
    expect(document.body.textContent).toMatch(/volume "data" is in use by container\(s\) \[[0-9a-f]{12}\]/);
    expect(vnames()).toContain('data');
    // Selected for removal: the one in use is refused, the other goes.
    await fireEvent.click(screen.getByLabelText('Select cache'));
    await fireEvent.click(screen.getByLabelText('Select data'));
    expect(screen.getByTestId('volume-bulkbar').textContent).toContain('2 selected');
    await fireEvent.click(screen.getByTestId('volume-bulk-remove'));
    await until(() => vrows().length === 2);
    expect(vnames().sort()).toEqual([anon, 'data'].sort());
    // Prune: anonymous ones by default, named ones when asked.
    vols.push(vol('old')); // made elsewhere: the engine's volume event brings it in
    const events = ['events:1', 'events:2', 'events:3', 'events:4'].find((n) => t.listening(n))!;
    t.emit(events, [{ Time: new Date().toISOString(), Type: 'volume', Action: 'create', ID: 'old', Name: 'old', Attributes: {} }]);
    await until(() => vrows().length === 3);
    await fireEvent.click(screen.getByTestId('volume-prune-open'));
    expect(screen.getByTestId('volume-prune').textContent).toContain('1 anonymous volume');
    await fireEvent.click(screen.getByTestId('volume-prune-submit'));
    await until(() => vrows().length === 2);
    expect(t.called('Volumes.Prune').map((c) => c.params)).toEqual([[false]]);
    expect(vnames().sort()).toEqual(['data', 'old']);
    await fireEvent.click(screen.getByTestId('volume-prune-open'));
    await fireEvent.click(screen.getByTestId('volume-prune-named'));
    await fireEvent.click(screen.getByTestId('volume-prune-submit'));
    await until(() => vrows().length === 1);
    expect(t.called('Volumes.Prune').at(-1)!.params).toEqual([true]);
    expect(vnames()).toEqual(['data']);
    await until(() => screen.queryAllByText('Removed 1 unused volume').length === 2);
  });
});
