import { describe, expect, it } from 'vitest';
import { renderTemplate, templateReferences } from '../../src/formats/template.js';

describe('templates', () => {
  it('finds {{ VAULT:PATH }} references with their lines, leaving other braces alone', () => {
    const template = 'a: {{ prod:db/pw }}\nb: {{prod:api}}\nhelm: {{ .Values.x }}\n';
    expect(templateReferences(template).map((r) => [r.vault, r.path, r.line])).toEqual([
      ['prod', 'db/pw', 1],
      ['prod', 'api', 2],
    ]);
    const out = renderTemplate(
      template,
      new Map([
        ['prod:db/pw', Buffer.from('s3cret')],
        ['prod:api', Buffer.from('k')],
      ]),
    );
    expect(out.toString()).toBe('a: s3cret\nb: k\nhelm: {{ .Values.x }}\n');
  });

  it('rejects an invalid reference with its line', () => {
    expect(() => templateReferences('ok\n{{ prod:../etc }}')).toThrow(/line 2/);
  });
});
