// The portal in a real browser: Debian's Chromium, headless, driven by playwright-core, signing in
// through the real identity provider (Keycloak, e2e/keycloak.sh) against the running commons and
// the local control plane. Every page visited is checked by axe-core (no serious or critical
// violation of WCAG 2.2 A/AA) and photographed into $COMMONS_PORTAL_SCREENSHOTS.
//
// Run by e2e/test.sh: node --test e2e/portal/portal.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BASE = `http://${process.env.COMMONS_LISTEN ?? '127.0.0.1:18080'}`;
const ISSUER = process.env.COMMONS_E2E_OIDC_ISSUER ?? 'http://127.0.0.1:18180/realms/commons';
const SHOTS = process.env.COMMONS_PORTAL_SCREENSHOTS ?? '/tmp/commons-portal-screenshots';
const RUN = String(Date.now() % 1_000_000);
const NORTH = `portal-north-${RUN}`;
const SOUTH = `portal-south-${RUN}`;
const WAITING = `portal-wait-${RUN}`;
const SANDBOX = `portal-sbx-${RUN}`;
mkdirSync(SHOTS, { recursive: true });

let browser;
const checked = [];

function kubectl(args, input) {
  return execFileSync('kubectl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function tenancy(name, organisation, displayName) {
  return {
    apiVersion: 'commons.dev/v1alpha1',
    kind: 'Tenancy',
    metadata: { name },
    spec: {
      organisation: { id: organisation, displayName, sector: 'local-government', costCentre: 'PORTAL-1',
                      contactEmail: 'it@example.gov.uk' },
      classification: 'official',
      owners: [{ kind: 'User', name: `owner@${organisation}.example.gov.uk` }],
      namespaces: [{ name: 'app' }],
      quota: { cpu: '2', memory: '4Gi', storage: '10Gi', loadBalancers: 0 },
      budget: { monthlyAmount: '250.00' },
      deletionProtection: false,
    },
  };
}

async function token(user) {
  const body = new URLSearchParams({ grant_type: 'password', client_id: 'commons-e2e', username: user,
                                     password: `${user}-password` });
  const answer = await fetch(`${ISSUER}/protocol/openid-connect/token`, { method: 'POST', body });
  const json = await answer.json();
  assert.ok(json.access_token, `a token for ${user}: ${JSON.stringify(json)}`);
  return json.access_token;
}

// A new browser context per person: nothing of one person's session reaches another's. The
// portal's Content-Security-Policy applies as in any browser: anything it refuses is recorded and
// fails the page's check.
async function personPage() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.refused = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) page.refused.push(m.text());
  });
  return page;
}

// axe-core on the page as it stands: no serious or critical violation of WCAG 2.2 A and AA.
async function accessible(page, name) {
  assert.deepEqual(page.refused ?? [], [], `${name}: the page's own policy refused something`);
  // Evaluated by the browser's debugging protocol, which the page's policy does not govern.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => globalThis.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(', ')})`), [],
                   `${name}: accessibility violations`);
  const title = await page.title();
  assert.match(title, / – Commons – shared government cloud$/, `${name}: the GOV.UK title pattern`);
  checked.push({ name, title, passes: result.passes.length });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function signIn(page, user, next = '/portal') {
  await page.goto(`${BASE}${next}`);
  if (next === '/portal') {
    await accessible(page, 'start');
    await page.getByRole('button', { name: 'Start now' }).click();
  }
  await page.waitForURL((url) => url.href.startsWith(ISSUER));
  await page.fill('#username', user);
  await page.fill('#password', `${user}-password`);
  await page.click('#kc-login');
  await page.waitForURL((url) => url.href.startsWith(`${BASE}/portal/`));
}

before(async () => {
  kubectl(['apply', '--server-side', '--field-manager=portal-e2e', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'List',
    items: [tenancy(NORTH, 'northshire-county-council', 'Northshire County Council'),
            tenancy(SOUTH, 'southshire-district-council', 'Southshire District Council')],
  }));
  kubectl(['wait', '--for=condition=Ready', '--timeout=120s', `tenancy/${NORTH}`, `tenancy/${SOUTH}`]);
  browser = await chromium.launch({
    executablePath: process.env.COMMONS_PORTAL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const name of [NORTH, SOUTH, SANDBOX]) {
    try { kubectl(['delete', 'tenancy', name, '--wait=false']); } catch { /* already gone */ }
  }
  console.log(`pages checked by axe-core and photographed into ${SHOTS}:`);
  for (const c of checked) console.log(`  ${c.name}: "${c.title}" (${c.passes} rules passed)`);
});

test('a council user signs in, sees only their own tenancies and spend, and not another council\'s by URL', async () => {
  const page = await personPage();
  await signIn(page, 'nora');
  assert.equal(new URL(page.url()).pathname, '/portal/tenancies');
  await page.getByRole('heading', { name: 'Your tenancies' }).waitFor();
  await page.getByRole('link', { name: NORTH }).waitFor();
  assert.equal(await page.getByRole('link', { name: SOUTH }).count(), 0, 'another council\'s tenancy is not listed');
  assert.ok((await page.textContent('main')).includes('£250.00'), 'the budget is shown');
  await accessible(page, 'tenancies');

  await page.getByRole('link', { name: NORTH }).click();
  await page.getByRole('heading', { name: `Tenancy ${NORTH}` }).waitFor();
  const main = await page.textContent('main');
  for (const text of ['Northshire County Council', 'Spent so far', 'Projected by month end', 'Quota used across the tenancy']) {
    assert.ok(main.includes(text), `the tenancy page shows ${text}`);
  }
  await accessible(page, 'tenancy');

  // More quota: nothing asked is named; then a new CPU limit becomes a request of its own.
  await page.getByRole('button', { name: 'Ask for more quota' }).click();
  await page.getByRole('heading', { name: 'Ask for more quota' }).waitFor();
  await accessible(page, 'more-quota');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#cpu-error').waitFor();
  await page.fill('#cpu', '3');
  await page.fill('#justification', 'the winter peak of planning applications');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: `More quota for ${NORTH}` }).waitFor();
  assert.ok((await page.textContent('main')).includes('Estimated cost for'), 'priced once changed');
  await page.goto(`${BASE}/portal/tenancies/${NORTH}`);

  // Editing the URL to Southshire's tenancy: the same page as for one that does not exist.
  const other = await page.goto(`${BASE}/portal/tenancies/${SOUTH}`);
  assert.equal(other.status(), 404);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  assert.ok(!(await page.content()).includes('Southshire District Council'), 'nothing of it is shown');
  await accessible(page, 'not-found');
  const none = await page.goto(`${BASE}/portal/tenancies/no-such-tenancy-${RUN}`);
  assert.equal(none.status(), 404);
  await page.context().close();
});

test('a platform admin decides a pending request with a reason; the form names a missing answer', async () => {
  const nora = await token('nora');
  const spec = tenancy(WAITING, 'northshire-county-council', 'Northshire County Council').spec;
  spec.quota.cpu = '16'; // over the auto-approval policy's ceiling: it waits for a person
  const made = await fetch(`${BASE}/v1/tenancy-requests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${nora}`, 'content-type': 'application/json', 'idempotency-key': `portal-${RUN}` },
    body: JSON.stringify({ tenancyName: WAITING, tenancy: spec, justification: 'the planning service moves here' }),
  });
  const answer = await made.text();
  assert.equal(made.status, 201, answer);
  const request = JSON.parse(answer).name;

  const page = await personPage();
  await signIn(page, 'pat', '/portal/requests');
  await page.getByRole('heading', { name: 'Waiting for a decision' }).waitFor();
  await accessible(page, 'requests');
  await page.getByRole('link', { name: `New tenancy: ${WAITING}` }).click();
  await page.getByRole('heading', { name: `New tenancy for ${WAITING}` }).waitFor();
  const pending = await page.textContent('main');
  assert.ok(pending.includes('Estimated cost for'), 'the forecast cost is shown');
  assert.ok(pending.includes('rule council-sandbox: it is not a sandbox expiring within 90 days'), `the policy's view is shown: ${pending}`);
  await accessible(page, 'request');

  // Nothing chosen: the GOV.UK error summary, linked to each field, and inline errors.
  await page.getByRole('button', { name: 'Record decision' }).click();
  await page.locator('.govuk-error-summary').waitFor();
  assert.match(await page.title(), /^Error: /);
  const summary = await page.locator('.govuk-error-summary__list a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(summary, ['#outcome', '#reason']);
  await accessible(page, 'request-errors');

  await page.check('#outcome');
  await page.fill('#reason', 'within the planning programme\'s allocation');
  await page.getByRole('button', { name: 'Record decision' }).click();
  await page.waitForURL(`${BASE}/portal/requests/${request}?decided=1`);
  await page.locator('.govuk-notification-banner--success').getByText('Your decision is recorded').waitFor();
  const decided = await page.textContent('main');
  assert.ok(decided.includes('Approved by'), `the decision is shown: ${decided}`);
  assert.equal(await page.getByRole('button', { name: 'Record decision' }).count(), 0, 'a decision is final');
  await accessible(page, 'request-decided');
  await page.context().close();
  try { kubectl(['delete', 'tenancy', WAITING, '--wait=false']); } catch { /* not made yet */ }
});

test('a council user requests a sandbox tenancy through the question pages; it is approved at once, Ready, with its spend', async () => {
  const page = await personPage();
  await signIn(page, 'nora');
  await page.getByRole('button', { name: 'Request a tenancy' }).click();
  await page.getByRole('heading', { name: 'Who is the tenancy for?' }).waitFor();
  await accessible(page, 'request-organisation');

  // Nothing entered: each missing answer named in the error summary and at its field.
  await page.fill('#display-name', '');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('.govuk-error-summary').waitFor();
  const missing = await page.locator('.govuk-error-summary__list a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  for (const id of ['#display-name', '#sector', '#cost-centre', '#contact-email', '#name']) {
    assert.ok(missing.includes(id), `${id} is named: ${missing}`);
  }
  await accessible(page, 'request-organisation-errors');

  // A name the CRD refuses: the API's own validation, shown against the field.
  await page.check('input[name=organisation][value=northshire-county-council]');
  await page.fill('#display-name', 'Northshire County Council');
  await page.check('input[name=sector][value=local-government]');
  await page.fill('#cost-centre', 'NCC-PLAN-1');
  await page.fill('#contact-email', 'it@northshire.example.gov.uk');
  await page.fill('#name', 'Not_A_Name');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#name-error').waitFor();
  assert.deepEqual(await page.locator('.govuk-error-summary__list a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))), ['#name']);

  await page.fill('#name', SANDBOX);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'What does the tenancy need?' }).waitFor();
  await accessible(page, 'request-needs');
  await page.fill('#namespaces', 'app');
  await page.fill('#cpu', '1');
  await page.fill('#memory', '2Gi');
  await page.fill('#storage', '5Gi');
  await page.fill('#load-balancers', '0');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'How is its data classified?' }).waitFor();
  await accessible(page, 'request-classification');
  await page.check('input[name=classification][value=official]');
  await page.check('input[name=sandbox][value=yes]');
  await page.fill('#sandbox-days', '30');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Why do you need it?' }).waitFor();
  await accessible(page, 'request-reason');
  await page.fill('#justification', 'trying the new planning portal before it goes live');
  await page.getByRole('button', { name: 'Continue' }).click();

  await page.getByRole('heading', { name: 'Check your answers before requesting the tenancy' }).waitFor();
  const check = await page.textContent('main');
  for (const text of [SANDBOX, 'Yes, for 30 days', 'Estimated cost', 'VAT']) {
    assert.ok(check.includes(text), `the check-answers page shows ${text}`);
  }
  await accessible(page, 'request-check');
  await page.getByRole('button', { name: 'Request the tenancy' }).click();
  await page.getByRole('heading', { name: 'Tenancy approved' }).waitFor();
  await accessible(page, 'request-sent');

  kubectl(['wait', '--for=condition=Ready', '--timeout=120s', `tenancy/${SANDBOX}`]);
  // Something running in it, so that it spends.
  kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'planning', namespace: `${SANDBOX}-app` },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'app', image: 'registry.example/planning:1.0',
                     securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                     resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '500m', memory: '1Gi' } } }],
    },
  }));
  await page.getByRole('link', { name: `See the tenancy ${SANDBOX}` }).click();
  await page.getByRole('heading', { name: `Tenancy ${SANDBOX}` }).waitFor();
  // Ready, and its spend measured (the meter weighs spend every few seconds here).
  const deadline = Date.now() + 90_000;
  for (;;) {
    const text = await page.textContent('main');
    const projected = /Projected by month end\s*£([\d,.]+)/.exec(text);
    if (text.includes('Ready') && /Spent so far\s*£\d/.test(text) && projected && parseFloat(projected[1].replace(/,/g, '')) > 0) break;
    assert.ok(Date.now() < deadline, `never Ready with its spend: ${text}`);
    await page.waitForTimeout(2000);
    await page.reload();
  }
  await accessible(page, 'tenancy-sandbox');
  await page.context().close();
});

test('a finance user sees spend by organisation with the year\'s chart, and downloads FOCUS whose total is the page\'s', async () => {
  const page = await personPage();
  await signIn(page, 'finn', '/portal/spend');
  await page.getByRole('heading', { name: /^Spend in .* by organisation$/ }).waitFor();
  assert.ok((await page.textContent('#spend')).includes('northshire-county-council'));
  const chart = await page.locator('img.commons-chart').evaluate((img) => img.complete && img.naturalWidth > 0);
  assert.ok(chart, 'the chart, drawn on the server, is shown');
  await accessible(page, 'spend');
  const pence = (text) => Math.round(parseFloat(text.replace(/[£,]/g, '')) * 100);
  const shown = pence(await page.textContent('#spend-total'));
  // The year's table has this month with its own total (read a moment later: pennies more at most).
  const heading = (await page.textContent('h1')).match(/^Spend in (\w+ \d{4}) by/)[1];
  const monthRow = page.locator('table', { hasText: 'by month' }).locator('tr', { hasText: heading });
  const yearly = pence(await monthRow.locator('td').textContent());
  assert.ok(yearly >= shown && yearly - shown <= 5, `the year's table says ${yearly}p for ${heading}, the page ${shown}p`);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Cost and usage in FOCUS (CSV)' }).click(),
  ]);
  const focus = readFileSync(await download.path(), 'utf8').trim().split('\n');
  const columns = focus[0].split(',');
  const billed = columns.indexOf('BilledCost');
  const account = columns.indexOf('BillingAccountId');
  assert.ok(billed >= 0 && focus.length > 1, focus[0]);
  let total = 0;
  for (const row of focus.slice(1)) {
    const cells = row.split(',');
    assert.equal(cells[account], 'northshire-county-council', 'only Northshire\'s rows');
    total += pence(cells[billed]);
  }
  // The month is open, and its figures grow; the page says where they end, and the file, read as
  // of that instant, has the same total to the penny.
  assert.match(await page.textContent('#spend-until'), /these figures are to \d{1,2}:\d\d[ap]m UTC on \d{1,2} \w+ \d{4}|these figures are to (midday|midnight) UTC/);
  assert.equal(total, shown, `FOCUS ${total}p against the page's ${shown}p`);
  console.log(`FOCUS file ${download.suggestedFilename()}: ${focus.length - 1} rows, ${total}p; the page: ${shown}p`);
  await page.context().close();
});

test('a council user finds a shared service in the applications store and subscribes a namespace to it', async () => {
  const page = await personPage();
  await signIn(page, 'sam', '/portal/applications');
  await page.getByRole('heading', { name: 'Applications other public bodies share' }).waitFor();
  // Filtered by category: the API's filter, offered from the categories the catalogue has.
  await page.selectOption('#category', 'payroll');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL((url) => url.searchParams.get('category') === 'payroll');
  assert.equal(await page.locator('#category').inputValue(), 'payroll', 'the choice is kept');
  const titles = await page.locator('.govuk-summary-card__title').allTextContents();
  assert.ok(titles.some((t) => t.includes('Payroll')), `${titles}`);
  await page.selectOption('#category', '');
  await page.fill('#q', 'payroll');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('heading', { name: /^1 service$/ }).waitFor();
  await accessible(page, 'applications');
  await page.locator('.govuk-summary-card__title a').first().click();
  await page.getByRole('button', { name: 'Subscribe a tenancy' }).waitFor();
  const listing = await page.textContent('main');
  assert.ok(listing.includes('Northshire County Council') && listing.includes('OFFICIAL'), 'who provides it, at what classification');
  await accessible(page, 'application');
  await page.getByRole('button', { name: 'Subscribe a tenancy' }).click();
  // Only Southshire's own namespaces are offered.
  const offered = await page.locator('input[name=namespace]').evaluateAll((is) => is.map((i) => i.value));
  assert.ok(offered.includes(`${SOUTH}-app`) && offered.every((n) => !n.startsWith('northshire')), `${offered}`);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#namespace-error').waitFor();
  await accessible(page, 'subscribe-errors');
  await page.check(`input[name=namespace][value="${SOUTH}-app"]`);
  await page.fill('#name', `payroll-${RUN}`);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((url) => url.pathname === '/portal/subscriptions');
  await page.locator('.govuk-notification-banner--success').getByText('You asked to use Payroll').waitFor();
  const row = page.locator('tr', { hasText: `${SOUTH}-app` });
  assert.ok((await row.textContent()).includes('northshire-council-revenues/payroll'), await row.textContent());
  await accessible(page, 'subscriptions');
  await page.context().close();
});

test('without JavaScript: sign in, read, and a form refused and then answered, all work', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await signIn(page, 'sam', `/portal/tenancies/${SOUTH}/more-quota`);
  await page.getByRole('heading', { name: 'Ask for more quota' }).waitFor();
  assert.equal(await page.locator('body.js-enabled').count(), 0, 'no script ran');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('.govuk-error-summary a[href="#cpu"]').waitFor();
  await page.fill('#memory', '6Gi');
  await page.fill('#justification', 'a second look at the winter peak');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: `More quota for ${SOUTH}` }).waitFor();
  await context.close();
});

test('a form without the session\'s CSRF token changes nothing, and sign-out ends the session everywhere', async () => {
  const page = await personPage();
  await signIn(page, 'sam');
  // Another site's form posting into the portal: no CSRF token, refused, still signed in.
  const forged = await page.request.post(`${BASE}/portal/sign-out`, { form: { csrf: 'forged' }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  const still = await page.goto(`${BASE}/portal/tenancies`);
  assert.equal(still.status(), 200);
  const cookies = await page.context().cookies(`${BASE}/portal/tenancies`);
  const session = cookies.find((c) => c.name === 'commons_session');
  assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Lax', JSON.stringify(session));

  await page.getByRole('button', { name: /Sign out/ }).click();
  await page.waitForURL(`${BASE}/portal/signed-out`);
  await page.getByRole('heading', { name: 'You have signed out' }).waitFor();
  await accessible(page, 'signed-out');

  // The old cookie, replayed by another browser, opens nothing.
  const replay = await browser.newContext();
  await replay.addCookies([{ ...session, sameSite: 'Lax' }]);
  const again = await replay.newPage();
  await again.goto(`${BASE}/portal/tenancies`);
  assert.ok(again.url().startsWith(ISSUER), `sent to sign in again, not let in: ${again.url()}`);
  await replay.close();
  await page.context().close();
});

test('every page checked has a title of its own, in the GOV.UK pattern', () => {
  // The same page seen again (the start page after each sign-in, a request before and after its
  // decision) keeps its title; two different pages never share one.
  const samePage = (a, b) => a === b || (a.startsWith('request') && b.startsWith('request') && [a, b].every((n) => ['request', 'request-decided'].includes(n)));
  const byTitle = new Map();
  for (const { name, title } of checked) {
    const other = byTitle.get(title);
    assert.ok(other === undefined || samePage(other, name), `"${title}" is the title of both ${other} and ${name}`);
    byTitle.set(title, name);
  }
  assert.ok(checked.length === 0 || byTitle.size >= 2, 'titles were collected');
});
