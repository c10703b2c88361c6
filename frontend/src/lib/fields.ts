// fieldOf maps a server error to the run dialog field it is about: app.Error carries a code and a
// message, and the message says what was wrong ("invalid port mapping …").
import type { ApiError } from './transport';

// Ordered: the first rule whose pattern matches names the field. Messages quote the user's value,
// so the rules look at the words app.ParseRunRequest puts around it ("invalid port mapping %q").
const RULES: [RegExp, string][] = [
  [/^invalid --(cpus)\b/i, 'cpus'],
  [/^invalid --(memory)\b/i, 'memory'],
  [/^invalid --(restart)\b|conflicting options: --restart/i, 'restart'],
  [/^invalid port mapping|^invalid --publish|\bport \d+ is (already )?in use|\baddress already in use/i, 'ports'],
  [/^invalid volume|^invalid mount|already has a folder mounted/i, 'volumes'],
  [/^invalid environment variable|^reading env file|^env file/i, 'env'],
  [/^invalid container name|^name .* (already )?in use|^the name /i, 'name'],
  [/^invalid image reference|^an image is required|^pulling |manifest unknown|no such image|^image /i, 'image'],
  [/^a command is required|entrypoint/i, 'cmd'],
];

export function fieldOf(err: ApiError): string {
  for (const [re, f] of RULES) if (re.test(err.message)) return f;
  if (err.code === 'command_not_found' || err.code === 'cannot_run') return 'cmd';
  return 'general';
}
