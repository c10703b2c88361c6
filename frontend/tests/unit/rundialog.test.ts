// The run dialog's keyboard handling, its errors in plain words, and a run whose start fails.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { Api } from '../../src/lib/api';
import { ApiError } from '../../src/lib/transport';
import { AppState } from '../../src/lib/state.svelte';
import { explain } from '../../src/lib/errors';
import RunDialog from '../../src/components/RunDialog.svelte';
import { FakeTransport, until } from './fake-transport';

afterEach(() => { cleanup(); location.hash = ''; });

function open(handlers: Record<string, (...a: any[]) => unknown> = {}) {
  const t = new FakeTransport(handlers);
  const st = new AppState(new Api(t));
  const before = document.createElement('button');
  before.textContent = 'opener';
  document.body.appendChild(before);
  before.focus();
  let closed = 0;
  const r = render(RunDialog, { props: { st, onclose: () => { closed++; r.unmount(); } } });
  return { t, st, closed: () => closed, before };
}
const dialog = () => screen.getByTestId('run-dialog');

describe('RunDialog keyboard', () => {
  it('focuses the Image field and keeps Tab inside the dialog, both ways', async () => {
    open();
    const img = screen.getByLabelText('Image');
    expect(document.activeElement).toBe(img);
    // Shift+Tab from the first field goes to the last control of the dialog, Tab from there back to the first.
    await fireEvent.keyDown(img, { key: 'Tab', shiftKey: true });
    const last = document.activeElement as HTMLElement;
    expect(dialog().contains(last)).toBe(true);
    expect(last.dataset.testid).toBe('run-submit');
    await fireEvent.keyDown(last, { key: 'Tab' });
    expect(document.activeElement).toBe(img);
    // Focus moved outside by other means comes back in.
    const outsideEl = document.createElement('input');
    document.body.appendChild(outsideEl);
    outsideEl.focus();
    expect(dialog().contains(document.activeElement)).toBe(true);
    outsideEl.remove();
  });

  it('closes on Escape and gives focus back', async () => {
    const { closed, before } = open();
    await fireEvent.keyDown(screen.getByLabelText('Name'), { key: 'Escape' });
    expect(closed()).toBe(1);
    expect(document.activeElement).toBe(before);
  });

  it('keeps a filled form on a stray click outside; an empty one closes', async () => {
    const { closed } = open();
    await fireEvent.input(screen.getByLabelText('Image'), { target: { value: 'nginx' } });
    const back = dialog().parentElement!;
    await fireEvent.click(back);
    expect(closed()).toBe(0);
    expect((screen.getByLabelText('Image') as HTMLInputElement).value).toBe('nginx');
    expect(screen.getByTestId('run-nudge').textContent).toContain('Cancel');
    await fireEvent.input(screen.getByLabelText('Image'), { target: { value: '' } });
    await fireEvent.click(back);
    expect(closed()).toBe(1);
  });
});

describe('RunDialog errors', () => {
  it('says a taken name in plain words by the Name field, with the engine message behind Details', async () => {
    open({ 'Containers.Create': () => { throw new ApiError('conflict', 'the container name "web" is already in use by container 0123456789ab: conflict'); } });
    await fireEvent.input(screen.getByLabelText('Image'), { target: { value: 'busybox' } });
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'web' } });
    await fireEvent.click(screen.getByTestId('run-submit'));
    const err = await until(() => document.querySelector<HTMLElement>('[data-field="name"]'));
    expect(err!.textContent).toContain('Another container is already called “web”');
    const d = err!.querySelector('details')!;
    expect(d.querySelector('summary')!.textContent).toBe('Details');
    expect(d.textContent).toContain('already in use by container 0123456789ab');
  });

  it('offers Remove and retry when the container was created but did not start', async () => {
    let starts = 0;
    const made: string[] = [];
    const { t, closed } = open({
      'Containers.Create': (req: { Cmd: string[] }) => { const id = String(made.length + 1).repeat(64); made.push(id); return { ID: id, Name: `c${made.length}`, State: 'created', Cmd: req.Cmd }; },
      'Containers.Start': () => { if (++starts === 1) throw new ApiError('command_not_found', 'starting: exec: "htpd": executable file not found in $PATH'); },
      'Containers.Remove': () => null,
    });
    await fireEvent.input(screen.getByLabelText('Image'), { target: { value: 'busybox' } });
    await fireEvent.input(screen.getByLabelText('Command'), { target: { value: 'htpd -f' } });
    await fireEvent.click(screen.getByTestId('run-submit'));
    const err = await until(() => document.querySelector<HTMLElement>('[data-field="cmd"]'));
    expect(err!.textContent).toContain('The command was not found in the image');
    expect(screen.getByTestId('run-not-started').textContent).toContain('c1 was created but did not start');
    expect((screen.getByTestId('run-submit') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(screen.getByLabelText('Command'), { target: { value: 'httpd -f' } });
    await fireEvent.click(screen.getByTestId('run-remove-retry'));
    await until(() => closed() === 1);
    expect(t.called('Containers.Remove').map((c) => c.params)).toEqual([[made[0], true]]);
    expect(t.called('Containers.Create').map((c) => (c.params[0] as { Cmd: string[] }).Cmd)).toEqual([['htpd', '-f'], ['httpd', '-f']]);
    expect(location.hash).toBe(`#/containers/${made[1]}`);
  });
});

describe('explain', () => {
  it.each([
    ['not_found', 'pulling "nosuch/img:1": GET https://r/v2/nosuch/img/manifests/1: MANIFEST_UNKNOWN: manifest unknown', 'image', 'The image “nosuch/img:1” was not found'],
    ['internal', 'pulling "r.example/x": Get "https://r.example/v2/": dial tcp: lookup r.example on 10.0.2.3:53: no such host', 'image', 'The registry r.example could not be found'],
    ['conflict', 'port 8080:80/tcp: host port 127.0.0.1:8080 is already in use or not available (bind: address already in use): conflict', 'ports', 'Host port 8080 is already taken'],
    ['cannot_run', 'starting: exec: "/etc/passwd": permission denied', 'cmd', 'cannot be run'],
    ['invalid', 'invalid port mapping "80:x": bad container port', 'ports', 'invalid port mapping "80:x"'],
  ])('%s: %s', (code, msg, field, text) => {
    const x = explain(new ApiError(code, msg));
    expect(x.field).toBe(field);
    expect(x.text).toContain(text);
  });
});
