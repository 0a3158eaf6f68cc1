-- The SPEC section 4 catalogue. Seeded once by this migration; start-up never rewrites it.

INSERT INTO metrics (metric, kind, name, name_ar, overage_rate_usd) VALUES
    ('fields',                       'gauge',          'Fields',                    'الحقول',                 5.00),
    ('satellite_analyses_per_month', 'period_counter', 'Satellite analyses / month', 'تحليلات الأقمار الصناعية شهرياً', 0.50),
    ('ai_diagnoses_per_month',       'period_counter', 'AI diagnoses / month',      'التشخيصات بالذكاء الاصطناعي شهرياً', 0.25),
    ('pdf_reports_per_month',        'period_counter', 'PDF reports / month',       'تقارير PDF شهرياً',       0.10),
    ('storage_gb',                   'gauge',          'Storage (GB)',              'التخزين (جيجابايت)',      2.00),
    ('api_calls_per_day',            'daily_counter',  'API calls / day',           'استدعاءات API يومياً',     0.001),
    ('team_members',                 'gauge',          'Team members',              'أعضاء الفريق',            10.00);

INSERT INTO plans (plan_id, name, name_ar, description, description_ar, tier,
                   monthly_price_usd, quarterly_price_usd, yearly_price_usd, trial_days, overage, sort_order, features)
VALUES
    ('free', 'Free', 'مجاني',
     'For small farms getting started', 'للمزارع الصغيرة في بدايتها', 'free',
     0, 0, 0, 0, 'blocked', 1,
     '[{"key":"fields","name":"Fields","name_ar":"الحقول","included":true,"limit":3},
       {"key":"satellite_analyses_per_month","name":"Satellite analyses","name_ar":"تحليلات الأقمار الصناعية","included":true,"limit":10},
       {"key":"ai_diagnoses_per_month","name":"AI diagnoses","name_ar":"التشخيص بالذكاء الاصطناعي","included":false,"limit":0},
       {"key":"pdf_reports_per_month","name":"PDF reports","name_ar":"تقارير PDF","included":false,"limit":0}]'),
    ('starter', 'Starter', 'المبتدئ',
     'For growing farms', 'للمزارع النامية', 'starter',
     29, 79, 290, 14, 'billed', 2,
     '[{"key":"fields","name":"Fields","name_ar":"الحقول","included":true,"limit":10},
       {"key":"satellite_analyses_per_month","name":"Satellite analyses","name_ar":"تحليلات الأقمار الصناعية","included":true,"limit":50},
       {"key":"ai_diagnoses_per_month","name":"AI diagnoses","name_ar":"التشخيص بالذكاء الاصطناعي","included":true,"limit":20},
       {"key":"pdf_reports_per_month","name":"PDF reports","name_ar":"تقارير PDF","included":true,"limit":10}]'),
    ('professional', 'Professional', 'الاحترافي',
     'For commercial farms and cooperatives', 'للمزارع التجارية والجمعيات', 'professional',
     99, 269, 990, 14, 'billed', 3,
     '[{"key":"fields","name":"Fields","name_ar":"الحقول","included":true,"limit":50},
       {"key":"satellite_analyses_per_month","name":"Satellite analyses","name_ar":"تحليلات الأقمار الصناعية","included":true,"limit":200},
       {"key":"ai_diagnoses_per_month","name":"AI diagnoses","name_ar":"التشخيص بالذكاء الاصطناعي","included":true,"limit":100},
       {"key":"pdf_reports_per_month","name":"PDF reports","name_ar":"تقارير PDF","included":true,"limit":-1}]'),
    ('enterprise', 'Enterprise', 'المؤسسات',
     'For agribusinesses and large estates', 'للشركات الزراعية والمزارع الكبيرة', 'enterprise',
     499, 1349, 4990, 30, 'billed', 4,
     '[{"key":"fields","name":"Fields","name_ar":"الحقول","included":true,"limit":-1},
       {"key":"satellite_analyses_per_month","name":"Satellite analyses","name_ar":"تحليلات الأقمار الصناعية","included":true,"limit":-1},
       {"key":"ai_diagnoses_per_month","name":"AI diagnoses","name_ar":"التشخيص بالذكاء الاصطناعي","included":true,"limit":-1},
       {"key":"pdf_reports_per_month","name":"PDF reports","name_ar":"تقارير PDF","included":true,"limit":-1}]');

INSERT INTO plan_limits (plan_id, metric, limit_value) VALUES
    ('free', 'fields', 3), ('free', 'satellite_analyses_per_month', 10), ('free', 'ai_diagnoses_per_month', 0),
    ('free', 'pdf_reports_per_month', 0), ('free', 'storage_gb', 1), ('free', 'api_calls_per_day', 100),
    ('free', 'team_members', 1),
    ('starter', 'fields', 10), ('starter', 'satellite_analyses_per_month', 50), ('starter', 'ai_diagnoses_per_month', 20),
    ('starter', 'pdf_reports_per_month', 10), ('starter', 'storage_gb', 5), ('starter', 'api_calls_per_day', 500),
    ('starter', 'team_members', 3),
    ('professional', 'fields', 50), ('professional', 'satellite_analyses_per_month', 200), ('professional', 'ai_diagnoses_per_month', 100),
    ('professional', 'pdf_reports_per_month', -1), ('professional', 'storage_gb', 25), ('professional', 'api_calls_per_day', 2000),
    ('professional', 'team_members', 5),
    ('enterprise', 'fields', -1), ('enterprise', 'satellite_analyses_per_month', -1), ('enterprise', 'ai_diagnoses_per_month', -1),
    ('enterprise', 'pdf_reports_per_month', -1), ('enterprise', 'storage_gb', 100), ('enterprise', 'api_calls_per_day', 10000),
    ('enterprise', 'team_members', -1);
