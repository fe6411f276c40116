// i18n.js — a page's words and formats, for the portal and the console alike: the catalogues
// in <base><lang>.json, the base named by <html data-i18n-base="/portal/i18n/"> (English the
// fallback for any key a language lacks), an administrator's additions (the portal's from the
// setting plugin.portal.messages, given by setExtra), <html lang dir>, and numbers, money and
// dates through Intl for the chosen language.
'use strict';
(function () {
    const RTL = ['fa', 'ar', 'he', 'ur', 'ps', 'ckb'];
    const built = ['en', 'fa'];
    let lang = 'en', words = {}, english = {}, extra = {};

    async function load(code) {
        if (!built.includes(code))
            return {};
        const base = document.documentElement.dataset.i18nBase || '/portal/i18n/';
        const res = await fetch(base + code + '.json', {credentials: 'same-origin'});
        return res.ok ? res.json() : {};
    }

    // The languages one may choose: the built-in ones and any the setting adds.
    function languages() {
        return built.concat(Object.keys(extra).filter((c) => !built.includes(c)));
    }

    // Switches to CODE (an unknown code falls back to English) and relabels the page.
    async function use(code) {
        if (!languages().includes(code))
            code = 'en';
        if (!Object.keys(english).length)
            english = Object.assign(await load('en'), extra.en || {});
        words = code === 'en' ? english : Object.assign(await load(code), extra[code] || {});
        lang = code;
        document.documentElement.lang = code;
        document.documentElement.dir = RTL.includes(code.split('-')[0]) ? 'rtl' : 'ltr';
        apply(document);
    }

    // The text of KEY with {name} replaced from VARS; the key itself when no catalogue has it.
    function t(key, vars) {
        const s = key in words ? words[key] : key in english ? english[key] : key;
        return s.replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
    }

    // Every element marked data-i18n under ROOT gets its text from the catalogue.
    function apply(root) {
        for (const el of root.querySelectorAll('[data-i18n]'))
            el.textContent = t(el.dataset.i18n);
        document.title = t('title');
    }

    function number(v, digits) {
        const n = Number(v);
        if (v === null || v === undefined || v === '' || Number.isNaN(n))
            return t('none');
        const most = digits === undefined ? 3 : digits;
        return new Intl.NumberFormat(lang, {maximumFractionDigits: most}).format(n);
    }

    function money(v, currency) {
        const n = Number(v);
        if (v === null || v === undefined || v === '' || Number.isNaN(n))
            return t('none');
        try {
            return new Intl.NumberFormat(lang, {style: 'currency', currency: currency || 'USD'})
                .format(n);
        } catch (e) { // a currency that is not an ISO code: the number and the text as given
            return number(n, 2) + ' ' + currency;
        }
    }

    function date(v, withTime) {
        const d = v ? new Date(v) : null;
        if (!d || Number.isNaN(d.getTime()))
            return t('none');
        return new Intl.DateTimeFormat(lang, withTime ? {dateStyle: 'medium', timeStyle: 'short'}
                                                      : {dateStyle: 'medium'}).format(d);
    }

    // A language's name in itself, for the switcher.
    function name(code) {
        const own = {en: 'English', fa: 'فارسی'};
        return (extra[code] && extra[code]['language.name']) || own[code] || code;
    }

    window.I18n = {
        use, t, apply, number, money, date, languages, name,
        lang: () => lang,
        setExtra: (x) => { extra = x && typeof x === 'object' ? x : {}; english = {}; },
    };
})();
