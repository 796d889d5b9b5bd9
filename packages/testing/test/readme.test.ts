import { readFileSync } from 'node:fs';
import * as path from 'node:path';

test("the README's example is exactly test/readme-example.test.ts (which runs)", () => {
  const readme = readFileSync(path.join(__dirname, '../README.md'), 'utf8');
  const example = readFileSync(path.join(__dirname, 'readme-example.test.ts'), 'utf8');
  const code = example.split('// README example: start\n')[1]!.split('// README example: end')[0]!;
  expect(readme).toContain('```ts\n' + code + '```');
});
