-- Open Source Point of Sale's tables as SQLite, for a demo or a test venue (`epos-bridge db init
-- --demo --adapter sqlmap --mapping ospos`). Written here from the schema OSPOS publishes
-- (opensourcepos/opensourcepos, MIT licence): database/database.sql at commit 05ae4c0c (the 3.1
-- development line, where suspended sales still live in their own tables beside the completed
-- ones and dinner tables exist) and the 3.0.2 -> 3.1.1 upgrade script (dinner_table_id NULL).
-- Table and column names are OSPOS's own; types are SQLite's nearest. Money is DECIMAL(15,2) in
-- major units (pounds), quantities DECIMAL(15,3), times 'YYYY-MM-DD HH:MM:SS' in the zone OSPOS's
-- PHP runs in. AUTO_INCREMENT keys are AUTOINCREMENT here: an id is never issued twice. The
-- person_id of customers and employees is UNIQUE here (OSPOS has one row per person, and
-- SQLite's foreign keys need a unique parent; MySQL's KEY is enough there).
-- Only the tables a sale touches are here (no receivings, gift cards, inventory, modules).

CREATE TABLE ospos_app_config (
    "key" VARCHAR(255) NOT NULL PRIMARY KEY,
    value VARCHAR(255) NOT NULL
);

CREATE TABLE ospos_people (
    first_name VARCHAR(255) NOT NULL,
    last_name VARCHAR(255) NOT NULL,
    gender INTEGER DEFAULT NULL,
    phone_number VARCHAR(255) NOT NULL,
    email VARCHAR(255) NOT NULL,
    address_1 VARCHAR(255) NOT NULL,
    address_2 VARCHAR(255) NOT NULL,
    city VARCHAR(255) NOT NULL,
    state VARCHAR(255) NOT NULL,
    zip VARCHAR(255) NOT NULL,
    country VARCHAR(255) NOT NULL,
    comments TEXT NOT NULL,
    person_id INTEGER PRIMARY KEY AUTOINCREMENT
);

CREATE TABLE ospos_customers (
    person_id INTEGER NOT NULL UNIQUE REFERENCES ospos_people (person_id),
    company_name VARCHAR(255) DEFAULT NULL,
    account_number VARCHAR(255) DEFAULT NULL UNIQUE,
    taxable INTEGER NOT NULL DEFAULT 1,
    discount_percent DECIMAL(15,2) NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE ospos_employees (
    username VARCHAR(255) NOT NULL UNIQUE,
    password VARCHAR(255) NOT NULL,
    person_id INTEGER NOT NULL UNIQUE REFERENCES ospos_people (person_id),
    deleted INTEGER NOT NULL DEFAULT 0,
    hash_version INTEGER NOT NULL DEFAULT 2
);

CREATE TABLE ospos_stock_locations (
    location_id INTEGER PRIMARY KEY AUTOINCREMENT,
    location_name VARCHAR(255) DEFAULT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE ospos_items (
    name VARCHAR(255) NOT NULL,
    category VARCHAR(255) NOT NULL,
    supplier_id INTEGER DEFAULT NULL,
    item_number VARCHAR(255) DEFAULT NULL UNIQUE,
    description VARCHAR(255) NOT NULL,
    cost_price DECIMAL(15,2) NOT NULL,
    unit_price DECIMAL(15,2) NOT NULL,
    reorder_level DECIMAL(15,3) NOT NULL DEFAULT 0,
    receiving_quantity DECIMAL(15,3) NOT NULL DEFAULT 1,
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    pic_id INTEGER DEFAULT NULL,
    allow_alt_description INTEGER NOT NULL,
    is_serialized INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    custom1 VARCHAR(25) NOT NULL DEFAULT '',
    custom2 VARCHAR(25) NOT NULL DEFAULT '',
    custom3 VARCHAR(25) NOT NULL DEFAULT '',
    custom4 VARCHAR(25) NOT NULL DEFAULT '',
    custom5 VARCHAR(25) NOT NULL DEFAULT '',
    custom6 VARCHAR(25) NOT NULL DEFAULT '',
    custom7 VARCHAR(25) NOT NULL DEFAULT '',
    custom8 VARCHAR(25) NOT NULL DEFAULT '',
    custom9 VARCHAR(25) NOT NULL DEFAULT '',
    custom10 VARCHAR(25) NOT NULL DEFAULT ''
);

CREATE TABLE ospos_items_taxes (
    item_id INTEGER NOT NULL REFERENCES ospos_items (item_id),
    name VARCHAR(255) NOT NULL,
    percent DECIMAL(15,3) NOT NULL,
    PRIMARY KEY (item_id, name, percent)
);

CREATE TABLE ospos_dinner_tables (
    dinner_table_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(30) NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,  -- 0 free, 1 occupied (a suspended sale holds it)
    deleted INTEGER NOT NULL DEFAULT 0
);

-- Completed sales. sale_time is when the sale was completed; OSPOS numbers receipts "POS <sale_id>".
CREATE TABLE ospos_sales (
    sale_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    customer_id INTEGER DEFAULT NULL REFERENCES ospos_customers (person_id),
    employee_id INTEGER NOT NULL DEFAULT 0 REFERENCES ospos_employees (person_id),
    comment TEXT NOT NULL,
    invoice_number VARCHAR(32) DEFAULT NULL UNIQUE,
    sale_id INTEGER PRIMARY KEY AUTOINCREMENT,
    dinner_table_id INTEGER NULL REFERENCES ospos_dinner_tables (dinner_table_id)
);
CREATE INDEX ospos_sales_customer_id ON ospos_sales (customer_id);
CREATE INDEX ospos_sales_employee_id ON ospos_sales (employee_id);
CREATE INDEX ospos_sales_sale_time ON ospos_sales (sale_time);
CREATE INDEX ospos_sales_dinner_table_id ON ospos_sales (dinner_table_id);

CREATE TABLE ospos_sales_items (
    sale_id INTEGER NOT NULL DEFAULT 0 REFERENCES ospos_sales (sale_id),
    item_id INTEGER NOT NULL DEFAULT 0 REFERENCES ospos_items (item_id),
    description VARCHAR(30) DEFAULT NULL,
    serialnumber VARCHAR(30) DEFAULT NULL,
    line INTEGER NOT NULL DEFAULT 0,
    quantity_purchased DECIMAL(15,3) NOT NULL DEFAULT 0,
    item_cost_price DECIMAL(15,2) NOT NULL,
    item_unit_price DECIMAL(15,2) NOT NULL,
    discount_percent DECIMAL(15,2) NOT NULL DEFAULT 0,
    item_location INTEGER NOT NULL REFERENCES ospos_stock_locations (location_id),
    PRIMARY KEY (sale_id, item_id, line)
);
CREATE INDEX ospos_sales_items_item_id ON ospos_sales_items (item_id);

CREATE TABLE ospos_sales_items_taxes (
    sale_id INTEGER NOT NULL REFERENCES ospos_sales (sale_id),
    item_id INTEGER NOT NULL REFERENCES ospos_items (item_id),
    line INTEGER NOT NULL DEFAULT 0,
    name VARCHAR(255) NOT NULL,
    percent DECIMAL(15,3) NOT NULL,
    PRIMARY KEY (sale_id, item_id, line, name, percent)
);

-- One row per payment type per sale: OSPOS's cart adds a second payment of a type to the first.
CREATE TABLE ospos_sales_payments (
    sale_id INTEGER NOT NULL REFERENCES ospos_sales (sale_id),
    payment_type VARCHAR(40) NOT NULL,
    payment_amount DECIMAL(15,2) NOT NULL,
    PRIMARY KEY (sale_id, payment_type)
);

-- Suspended sales: the open bills. Unsuspending one copies it into a till's cart and deletes
-- these rows; completing the cart writes a new ospos_sales row under a new sale_id.
CREATE TABLE ospos_sales_suspended (
    sale_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    customer_id INTEGER DEFAULT NULL REFERENCES ospos_customers (person_id),
    employee_id INTEGER NOT NULL DEFAULT 0 REFERENCES ospos_employees (person_id),
    comment TEXT NOT NULL,
    invoice_number VARCHAR(32) DEFAULT NULL,
    quote_number VARCHAR(32) DEFAULT NULL,
    sale_id INTEGER PRIMARY KEY AUTOINCREMENT,
    dinner_table_id INTEGER NULL REFERENCES ospos_dinner_tables (dinner_table_id)
);
CREATE INDEX ospos_sales_suspended_customer_id ON ospos_sales_suspended (customer_id);
CREATE INDEX ospos_sales_suspended_employee_id ON ospos_sales_suspended (employee_id);
CREATE INDEX ospos_sales_suspended_dinner_table_id ON ospos_sales_suspended (dinner_table_id);

CREATE TABLE ospos_sales_suspended_items (
    sale_id INTEGER NOT NULL DEFAULT 0 REFERENCES ospos_sales_suspended (sale_id),
    item_id INTEGER NOT NULL DEFAULT 0 REFERENCES ospos_items (item_id),
    description VARCHAR(30) DEFAULT NULL,
    serialnumber VARCHAR(30) DEFAULT NULL,
    line INTEGER NOT NULL DEFAULT 0,
    quantity_purchased DECIMAL(15,3) NOT NULL DEFAULT 0,
    item_cost_price DECIMAL(15,2) NOT NULL,
    item_unit_price DECIMAL(15,2) NOT NULL,
    discount_percent DECIMAL(15,2) NOT NULL DEFAULT 0,
    item_location INTEGER NOT NULL REFERENCES ospos_stock_locations (location_id),
    PRIMARY KEY (sale_id, item_id, line)
);
CREATE INDEX ospos_sales_suspended_items_item_id ON ospos_sales_suspended_items (item_id);

CREATE TABLE ospos_sales_suspended_items_taxes (
    sale_id INTEGER NOT NULL REFERENCES ospos_sales_suspended (sale_id),
    item_id INTEGER NOT NULL REFERENCES ospos_items (item_id),
    line INTEGER NOT NULL DEFAULT 0,
    name VARCHAR(255) NOT NULL,
    percent DECIMAL(15,3) NOT NULL,
    PRIMARY KEY (sale_id, item_id, line, name, percent)
);

CREATE TABLE ospos_sales_suspended_payments (
    sale_id INTEGER NOT NULL REFERENCES ospos_sales_suspended (sale_id),
    payment_type VARCHAR(40) NOT NULL,
    payment_amount DECIMAL(15,2) NOT NULL,
    PRIMARY KEY (sale_id, payment_type)
);

-- What OSPOS's installer seeds and a sale needs: the first employee, the stock location, the
-- two tables every OSPOS has (Delivery and Take Away are never occupied), and prices that
-- include tax (as a UK venue's do).
INSERT INTO ospos_people (first_name, last_name, phone_number, email, address_1, address_2, city, state, zip,
    country, comments, person_id)
VALUES ('John', 'Doe', '555-555-5555', 'admin@pappastech.com', 'Address 1', '', '', '', '', '', '', 1);
INSERT INTO ospos_employees (username, password, person_id, deleted, hash_version)
VALUES ('admin', '', 1, 0, 2);
INSERT INTO ospos_stock_locations (location_id, location_name, deleted) VALUES (1, 'stock', 0);
INSERT INTO ospos_dinner_tables (dinner_table_id, name, status, deleted) VALUES (1, 'Delivery', 0, 0), (2, 'Take Away', 0, 0);
INSERT INTO ospos_app_config ("key", value) VALUES
    ('tax_included', '1'), ('currency_symbol', '£'), ('currency_decimals', '2'), ('dinner_table_enable', '1');
