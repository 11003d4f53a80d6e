// Progressive enhancement only: every page works without this.
import { initAll } from '/portal/govuk/govuk-frontend.min.js';
initAll();
