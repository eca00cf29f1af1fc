# QK_SANITIZE=address,undefined adds the sanitizers to every target of this build (compile and link).
if(QK_SANITIZE)
  add_compile_options(-fsanitize=${QK_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${QK_SANITIZE})
endif()
