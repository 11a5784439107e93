import { KeynodeError } from '../errors.js';
import { parseSecretRef, type SecretRef } from '../vaults/paths.js';

/**
 * Templates for `secrets inject`: `{{ VAULT:PATH }}` is replaced by that secret's value.
 * Only references containing ':' are ours; other `{{ ... }}` (Helm, Jinja) stay as they are.
 */
const REFERENCE = /\{\{\s*([^\s{}]*:[^\s{}]*)\s*\}\}/g;

export interface TemplateReference extends SecretRef {
  /** "vault:path" as written. */
  text: string;
  line: number;
}

export function templateReferences(template: string): TemplateReference[] {
  const refs: TemplateReference[] = [];
  for (const match of template.matchAll(REFERENCE)) {
    const line = template.slice(0, match.index).split('\n').length;
    try {
      refs.push({ ...parseSecretRef(match[1]!), text: match[1]!, line });
    } catch (error) {
      throw new KeynodeError('ERR_TEMPLATE', `template line ${line}: ${(error as Error).message}`, { line });
    }
  }
  return refs;
}

/** Replace every reference; `values` maps "vault:path" (normalised) to the value. */
export function renderTemplate(template: string, values: ReadonlyMap<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const match of template.matchAll(REFERENCE)) {
    const ref = parseSecretRef(match[1]!);
    const value = values.get(`${ref.vault}:${ref.path}`);
    if (!value) throw new KeynodeError('ERR_TEMPLATE', `no value for ${match[1]!}`);
    parts.push(Buffer.from(template.slice(last, match.index), 'utf8'), value);
    last = match.index + match[0].length;
  }
  parts.push(Buffer.from(template.slice(last), 'utf8'));
  return Buffer.concat(parts);
}
