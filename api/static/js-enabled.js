// GOV.UK Frontend's convention: mark the page as scripted (and supported) before it is drawn.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
